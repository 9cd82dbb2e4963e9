from django.urls import path

from . import views

urlpatterns = [
    path("health", views.health),
    path("orders", views.OrderList.as_view()),
    path("orders/<str:id>", views.OrderDetail.as_view()),
    path("orders/<str:id>/refund", views.Refund.as_view()),
]
