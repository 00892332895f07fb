"""URLconf of the Django test site in wsgi_sites.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

BLOB = "y" * 5000


def books(request: HttpRequest, name: str) -> HttpResponse:
    return JsonResponse({"author": name, "blob": BLOB})


def item(request: HttpRequest, pk: int) -> HttpResponse:
    return JsonResponse({"item": pk})


urlpatterns = [
    path("authors/<str:name>/books", books),
    path("api/", include([path("items/<int:pk>", item)])),
]
