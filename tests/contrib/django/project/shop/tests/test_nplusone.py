"""N+1 detection of Django's statements: each request through perfkit's RouteMiddleware
is a unit of work, reported under its route template with the view's line."""

from pathlib import Path

from django.test import TestCase, override_settings

from perfkit.queries import NPlusOneDetector, get_n_plus_one_detector, set_n_plus_one_detector
from shop import views
from shop.models import Book

BOOKS = 12


def view_line(marker: str) -> int:
    lines = Path(views.__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text)


@override_settings(MIDDLEWARE=["perfkit.contrib.django.middleware.RouteMiddleware"])
class NPlusOneTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        Book.objects.bulk_create(
            [Book(id=i, title=f"title {i}", price_cents=i) for i in range(1, BOOKS + 1)]
        )

    def setUp(self):
        self.before = get_n_plus_one_detector()
        self.detector = NPlusOneDetector(threshold=10)
        set_n_plus_one_detector(self.detector)

    def tearDown(self):
        set_n_plus_one_detector(self.before)

    def test_a_view_loading_books_one_by_one_is_an_n_plus_one(self):
        response = self.client.get("/books/titles/")
        self.assertEqual(len(response.json()["titles"]), BOOKS)
        (found,) = self.detector.findings()
        self.assertEqual(found.route, "/books/titles/")
        self.assertEqual(found.kind, "request")
        self.assertIn('FROM "shop_book" WHERE "shop_book"."id" = ?', found.fingerprint)
        self.assertEqual(found.max_count, BOOKS)
        self.assertEqual(found.call_site.file, views.__file__)
        self.assertEqual(found.call_site.line, view_line("# N+1 view"))
        self.assertTrue(found.call_site.function.startswith("titles"))  # or its listcomp

    async def test_an_asgi_request_is_a_unit_too(self):
        # Django's ASGI handler: RouteMiddleware's async path; the sync view runs in
        # asgiref's thread, which copies the request's context.
        response = await self.async_client.get("/books/titles/")
        self.assertEqual(len(response.json()["titles"]), BOOKS)
        (found,) = self.detector.findings()
        self.assertEqual(found.route, "/books/titles/")
        self.assertEqual(found.call_site.line, view_line("# N+1 view"))

    def test_a_view_of_distinct_statements_has_none(self):
        response = self.client.get("/books/titles/at-once/")
        self.assertEqual(response.json()["count"], BOOKS)
        self.assertEqual(self.detector.findings(), [])
