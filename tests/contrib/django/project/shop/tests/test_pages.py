"""Django's page and fragment caching through the test Client, on the "default" cache at
the backend's defaults."""

from django.core.cache import cache
from django.test import SimpleTestCase

from shop import views


class PageCacheTests(SimpleTestCase):
    def setUp(self):
        cache.clear()

    def test_template_fragment_is_cached(self):
        first = self.client.get("/fragment/")
        second = self.client.get("/fragment/")
        self.assertEqual(first.status_code, 200)
        self.assertEqual(second.status_code, 200)
        # The page renders again; the {% cache %} fragment is the first render's.
        n = views.renders["fragment"]
        self.assertContains(first, f"<p>page {n - 1}</p><p>shelf {n - 1}</p>")
        self.assertContains(second, f"<p>page {n}</p><p>shelf {n - 1}</p>")

    def test_cache_page_serves_the_cached_page(self):
        first = self.client.get("/page/")
        second = self.client.get("/page/")
        self.assertEqual(first.status_code, 200)
        self.assertEqual(second.status_code, 200)
        self.assertEqual(second.content, first.content)
        self.assertEqual(first.content, f"page {views.renders['page']}".encode())
