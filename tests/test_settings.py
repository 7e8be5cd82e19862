"""Settings switch between the embedded mode and the service mode from the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "db_name": settings.DATABASES["default"]["NAME"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "whitenoise": "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE,
}))
"""

SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    clean["DJANGO_SETTINGS_MODULE"] = "alertwhisperer.settings"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def probe(**env: str) -> dict:
    result = run_python(PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_nothing_set_is_the_embedded_mode():
    s = probe()
    assert s["db"] == "django.db.backends.sqlite3"
    assert s["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert s["layer"] == "channels.layers.InMemoryChannelLayer"
    assert s["eager"] is True
    assert s["debug"] is True


def test_service_urls_switch_to_postgres_and_redis():
    s = probe(
        DATABASE_URL="postgres://aw:pw@db.internal:5432/alertwhisperer",
        REDIS_URL="redis://cache.internal:6379/0",
    )
    assert s["db"] == "django.db.backends.postgresql"
    assert s["db_name"] == "alertwhisperer"
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert s["layer"] == "channels_redis.core.RedisChannelLayer"
    assert s["eager"] is False
    assert s["broker"] == "redis://cache.internal:6379/0"


def test_debug_off_refuses_a_missing_secret_key():
    result = run_python(PROBE, DEBUG="false", ALLOWED_HOSTS="aw.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_off_refuses_the_embedded_development_key():
    from alertwhisperer.settings import DEV_SECRET_KEY

    result = run_python(
        PROBE, DEBUG="false", ALLOWED_HOSTS="aw.example.com", SECRET_KEY=DEV_SECRET_KEY
    )
    assert result.returncode != 0
    assert "embedded development key" in result.stderr


def test_debug_off_with_real_settings_starts_and_serves_static_files():
    s = probe(DEBUG="0", ALLOWED_HOSTS="aw.example.com", SECRET_KEY="x" * 50)
    assert s["debug"] is False
    assert s["whitenoise"] is True


def test_demo_data_refused_with_debug_off(tmp_path):
    env = {
        "DEBUG": "false",
        "ALLOWED_HOSTS": "aw.example.com",
        "SECRET_KEY": "y" * 50,
        "SQLITE_PATH": str(tmp_path / "prod.sqlite3"),
    }
    code = "import django,sys;django.setup();from django.core.management import call_command;"
    migrate = run_python(code + "call_command('migrate', verbosity=0)", **env)
    assert migrate.returncode == 0, migrate.stderr
    seed = run_python(code + "call_command('seed_demo')", **env)
    assert seed.returncode != 0
    assert "embedded demo mode only" in seed.stderr
    users = run_python(
        code + "from apps.accounts.models import User;print(User.objects.count())", **env
    )
    assert users.stdout.strip() == "0"


def test_embedded_mode_migrates_and_seeds_sqlite(tmp_path):
    """What `make run` does with nothing set: migrate an SQLite file and load the demo."""
    env = {"SQLITE_PATH": str(tmp_path / "demo.sqlite3")}
    code = (
        "import django;django.setup();from django.core.management import call_command;"
        "call_command('migrate', verbosity=0);call_command('seed_demo');call_command('seed_demo');"
        "from apps.accounts.models import User;from apps.tenants.models import Company, Asset;"
        "from django.contrib.auth import authenticate;"
        "u=authenticate(username='admin@alertwhisperer.com', password='admin123');"
        "print(User.objects.count(), Company.objects.count(), Asset.objects.count(), u.role.value)"
    )
    result = run_python(code, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "4 2 5 MSP Admin"
