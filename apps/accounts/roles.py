from django.db import models


class Role(models.TextChoices):
    """The three roles. Each is a Django auth group of the same name."""

    MSP_ADMIN = "MSP Admin", "MSP Admin"
    COMPANY_ADMIN = "Company Admin", "Company Admin"
    TECHNICIAN = "Technician", "Technician"
