from django.http import JsonResponse
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from policyd.integrations import guard_writes
from policyd.integrations.django import authorized_queryset

from .models import Order


class OrderChange(serializers.Serializer):
    status = serializers.ChoiceField(["new", "paid", "shipped", "cancelled"], required=False)
    total = serializers.FloatField(min_value=0, required=False)
    internal_notes = serializers.CharField(max_length=2000, required=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict) or set(data) - set(self.fields):
            raise serializers.ValidationError("unknown fields")
        return super().to_internal_value(data)


class OrderList(APIView):
    def get(self, request):
        rows = authorized_queryset(Order.objects.order_by("id"), request.policyd)[:200]
        return Response({"orders": [request.policyd.visible(o) for o in rows]})


class OneOrder(APIView):
    def order(self, request, id):  # noqa: A002
        found = Order.objects.filter(pk=id).first()
        if found is None:
            raise NotFound()
        self.check_object_permissions(request, found)  # PolicydPermission decides here
        return found


class OrderDetail(OneOrder):
    def get(self, request, id):  # noqa: A002
        return Response(request.policyd.visible(self.order(request, id)))

    def patch(self, request, id):  # noqa: A002
        order = self.order(request, id)
        change = OrderChange(data=request.data)
        change.is_valid(raise_exception=True)
        for name in guard_writes(request.policyd, change.validated_data):
            setattr(order, name, change.validated_data[name])
        order.save()
        return Response(request.policyd.visible(order))

    def delete(self, request, id):  # noqa: A002 -- forgets to ask about the object
        Order.objects.filter(pk=id).count()
        return Response(status=204)


class Refund(OneOrder):
    def post(self, request, id):  # noqa: A002
        order = self.order(request, id)
        order.status = "refunded"
        order.save()
        return Response({"id": order.id, "status": "refunded"})


def health(request):
    return JsonResponse({"ok": True})
