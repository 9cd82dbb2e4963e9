import os

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "tests.django_orders.urls"
INSTALLED_APPS = ["rest_framework", "tests.django_orders"]
MIDDLEWARE = ["policyd.integrations.django.PolicydMiddleware"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ["ORDERS_DB"]}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],  # policyd's middleware authenticates
    "DEFAULT_PERMISSION_CLASSES": ["policyd.integrations.drf.PolicydPermission"],
    "UNAUTHENTICATED_USER": None,
}
POLICYD = {
    "AUTHORIZER": "tests.django_orders.policy.authorizer",
    "AUTHENTICATE": "tests.django_orders.policy.verifier",
    "EXEMPT": ["/health"],
    "CONCEAL": "read",  # another tenant's order is 404, as a missing one
}
LOGGING = {"version": 1, "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
