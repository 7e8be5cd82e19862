from django.db import models


class AuditAction(models.TextChoices):
    USER_CREATED = "user_created", "User created"
    USER_UPDATED = "user_updated", "User updated"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    USER_DELETED = "user_deleted", "User deleted"
    MEMBERSHIP_CHANGED = "membership_changed", "Company membership changed"
    COMPANY_CREATED = "company_created", "Company created"
    COMPANY_DELETED = "company_deleted", "Company deleted"
    CONFIG_CHANGED = "config_changed", "Configuration changed"
    API_KEY_REGENERATED = "api_key_regenerated", "API key regenerated"
    HMAC_ENABLED = "hmac_enabled", "HMAC enabled"
    HMAC_DISABLED = "hmac_disabled", "HMAC disabled"
    ASSET_CHANGED = "asset_changed", "Asset changed"
    MAINTENANCE_CHANGED = "maintenance_changed", "Maintenance window changed"
    LOGIN = "login", "Logged in"
    LOGIN_FAILED = "login_failed", "Login failed"
    INCIDENT_ASSIGNED = "incident_assigned", "Incident assigned"
    INCIDENT_STATUS_CHANGED = "incident_status_changed", "Incident status changed"
    SNS_SUBSCRIPTION_CONFIRMED = "sns_subscription_confirmed", "SNS subscription confirmed"
