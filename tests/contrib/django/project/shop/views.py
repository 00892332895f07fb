from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_page
from django.views.decorators.http import require_http_methods

from shop.models import Book


def book(request: HttpRequest, book_id: int) -> JsonResponse:
    def load() -> dict:
        found = Book.objects.get(pk=book_id)
        return {"id": found.id, "title": found.title, "price_cents": found.price_cents}

    return JsonResponse(cache.get_or_load(f"book:{book_id}", load, 60, tags=[f"book:{book_id}"]))


@require_http_methods(["POST"])
def set_price(request: HttpRequest, book_id: int) -> JsonResponse:
    Book.objects.filter(pk=book_id).update(price_cents=int(request.POST["price_cents"]))
    cache.invalidate_tags([f"book:{book_id}"])
    return JsonResponse({"ok": True})


renders = {"fragment": 0, "page": 0, "async_page": 0}


def fragment(request: HttpRequest) -> HttpResponse:
    """A template whose {% cache %} fragment keeps the first render's number."""
    renders["fragment"] += 1
    return render(request, "shop/fragment.html", {"render": renders["fragment"]})


@cache_page(60)
def page(request: HttpRequest) -> HttpResponse:
    """A whole page cached by Django's cache_page."""
    renders["page"] += 1
    return HttpResponse(f"page {renders['page']}")


async def async_book(request: HttpRequest, book_id: int) -> JsonResponse:
    """An async view on the backend's native async methods."""
    key = f"async-book:{book_id}"
    found = await cache.aget(key)
    if found is None:
        found = {"id": book_id, "render": renders["async_page"] + 1}
        renders["async_page"] += 1
        await cache.aset(key, found, 60)
    return JsonResponse(found)


def titles(request: HttpRequest) -> JsonResponse:
    """An N+1: the ids in one statement, then one statement per book."""
    ids = list(Book.objects.order_by("id").values_list("id", flat=True))
    books = [Book.objects.get(pk=book_id) for book_id in ids]  # N+1 view
    return JsonResponse({"titles": [book.title for book in books]})


def titles_at_once(request: HttpRequest) -> JsonResponse:
    """The same answer in two distinct statements."""
    count = Book.objects.count()
    return JsonResponse(
        {
            "titles": list(Book.objects.order_by("id").values_list("title", flat=True)),
            "count": count,
        }
    )
