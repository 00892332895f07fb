"""Run in a child process by test_request_end.py: the Django project of wsgi_sites.py
(perfkit's WSGI metrics around ``get_wsgi_application()``) driven by werkzeug's test
``Client``, which reads each body and never closes it. Prints what the site counted, as
JSON. (Django's own test ``Client`` calls Django's handler, not the WSGI application, so
no WSGI middleware sees its requests.)"""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from tests.metrics.wsgi_sites import django_site


def main() -> None:
    client = Client(django_site)
    statuses = [
        client.get(path).status_code
        for path in ("/authors/ann/books", "/authors/bob/books", "/nothing/here")
    ]
    text = client.get("/metrics").get_data(as_text=True)
    requests: dict[str, float] = {}
    in_flight: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "http_requests_total":
                requests[f"{labels['route']} {labels['status_class']}"] = sample.value
            elif sample.name == "http_requests_in_flight":
                in_flight[labels["route"]] = sample.value
    print(json.dumps({"statuses": statuses, "requests": requests, "in_flight": in_flight}))


if __name__ == "__main__":
    main()
