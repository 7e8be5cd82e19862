"""Query filters shared by the read APIs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

# Every time zone in use lies between UTC-12:00 and UTC+14:00. PostgreSQL refuses offsets
# beyond ±15:59 with a DataError (a 500), though ISO 8601 and Python allow up to ±23:59.
MIN_OFFSET = timedelta(hours=-12)
MAX_OFFSET = timedelta(hours=14)


class InstantField(IsoDateTimeField):
    def clean(self, value: str | None) -> datetime | None:
        instant = super().clean(value)
        offset = instant.utcoffset() if instant is not None else None
        if offset is not None and not MIN_OFFSET <= offset <= MAX_OFFSET:
            raise ValidationError(
                "The time zone offset must lie between -12:00 and +14:00 (or be Z).",
                code="invalid_offset",
            )
        return instant


class InstantFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 date and time whose offset is one a time zone can have."""

    field_class = InstantField
