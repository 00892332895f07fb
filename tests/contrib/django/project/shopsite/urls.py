from django.urls import include, path
from shop import views
from shop.kit import kit

from perfkit.contrib.django.urls import admin_urls

urlpatterns = [
    path("books/<int:book_id>/", views.book),
    path("books/<int:book_id>/price/", views.set_price),
    path("async/books/<int:book_id>/", views.async_book),
    path("books/titles/", views.titles),
    path("books/titles/at-once/", views.titles_at_once),
    path("fragment/", views.fragment),
    path("page/", views.page),
    path("api/admin/performance/", include(admin_urls(kit))),
]
