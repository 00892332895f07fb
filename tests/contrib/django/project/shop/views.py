from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
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
