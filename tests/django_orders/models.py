from django.db import models


class Order(models.Model):
    id = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=64)
    tenant = models.CharField(max_length=64)
    status = models.CharField(max_length=32)
    total = models.FloatField()
    card_last4 = models.CharField(max_length=4)
    internal_notes = models.CharField(max_length=2000, default="")
    shared_with = models.JSONField(default=list)

    class Meta:
        app_label = "django_orders"
        db_table = "orders"
