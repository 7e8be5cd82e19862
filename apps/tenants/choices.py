from django.db import models


class AssetType(models.TextChoices):
    SERVER = "server", "Server"
    WEBSERVER = "webserver", "Web server"
    DATABASE = "database", "Database"
    CACHE = "cache", "Cache"
    NETWORK = "network", "Network device"
    CONTAINER = "container", "Container / pod"
    STORAGE = "storage", "Storage"
    OTHER = "other", "Other"


class WindowKind(models.TextChoices):
    WEEKLY = "weekly", "Every week"
    ONE_OFF = "one_off", "Once"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


AGGREGATION_FIELDS = ("asset", "signature", "tool", "severity")
AGGREGATION_KEY_CHOICES = (
    ("asset|signature", "Asset and signature (recommended)"),
    ("asset|signature|tool", "Asset, signature and tool"),
    ("asset", "Asset only"),
    ("signature", "Signature only"),
)


class RetentionDays(models.IntegerChoices):
    MONTH = 30, "30 days"
    QUARTER = 90, "90 days"
    YEAR = 365, "365 days"
