"""Settings switch between the embedded mode and the service mode from the environment."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

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

SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "FIELD_ENCRYPTION_KEYS",
    "TRUSTED_PROXIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_COOKIES",
    "BEHIND_TLS_PROXY",
)
STRONG_KEY = secrets.token_urlsafe(50)
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "aw.example.com",
    "SECRET_KEY": STRONG_KEY,
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


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
    s = probe(**{**PRODUCTION, "DEBUG": "0"})
    assert s["debug"] is False
    assert s["whitenoise"] is True


def test_demo_data_refused_with_debug_off(tmp_path):
    env = {**PRODUCTION, "SQLITE_PATH": str(tmp_path / "prod.sqlite3")}
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


# --- Production hardening --------------------------------------------------------------------

SECURITY_PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    name: getattr(settings, name, None)
    for name in (
        "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER", "FIELD_ENCRYPTION_KEYS",
    )
} | {"num_proxies": settings.REST_FRAMEWORK["NUM_PROXIES"]}))
"""


def security(**env: str) -> dict:
    result = run_python(SECURITY_PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    code = (
        "import django;django.setup();from django.core.management import call_command;"
        "call_command('check', deploy=True, fail_level='WARNING')"
    )
    result = run_python(code, **PRODUCTION, SQLITE_PATH=str(tmp_path / "prod.sqlite3"))
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_is_https_only():
    s = security(**PRODUCTION)
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] == 365 * 24 * 60 * 60
    assert s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["num_proxies"] == 0


def test_production_switches_from_the_environment():
    s = security(
        **PRODUCTION,
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        BEHIND_TLS_PROXY="false",
        TRUSTED_PROXIES="2",
    )
    assert s["SECURE_SSL_REDIRECT"] is False
    assert s["SECURE_HSTS_SECONDS"] == 0
    assert s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["num_proxies"] == 2


@pytest.mark.parametrize(
    "key", ["x", "x" * 50, "abcde" * 10, "django-insecure-" + STRONG_KEY], ids=len
)
def test_debug_off_refuses_a_weak_secret_key(key):
    result = run_python(PROBE, **{**PRODUCTION, "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY is weak" in result.stderr


def test_debug_off_refuses_missing_field_encryption_keys():
    env = {**PRODUCTION}
    del env["FIELD_ENCRYPTION_KEYS"]
    result = run_python(PROBE, **env)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set" in result.stderr


def test_field_encryption_keys_must_be_fernet_keys():
    result = run_python(PROBE, **{**PRODUCTION, "FIELD_ENCRYPTION_KEYS": "secret"})
    assert result.returncode != 0
    assert "not a Fernet key" in result.stderr


def test_debug_derives_a_development_encryption_key():
    s = security()
    assert len(s["FIELD_ENCRYPTION_KEYS"]) == 1
    Fernet(s["FIELD_ENCRYPTION_KEYS"][0])


# --- Content-Security-Policy -----------------------------------------------------------------

INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|hx-on")


@pytest.mark.django_db
def test_pages_carry_a_policy_without_inline_script_or_eval(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_templates_hold_no_inline_script_or_style():
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in (ROOT / "templates").rglob("*.html")
        for match in INLINE_CODE.finditer(path.read_text())
        if 'type="application/json"' not in match.group(0)
    ]
    assert offenders == []


def test_the_asgi_server_closes_its_database_connections_after_each_request():
    """Under ASGI every request has a thread of its own; a connection kept for the next
    request of that thread is never reused (the browser suite's daphne servers held ~30
    each, and CI ran out of PostgreSQL's 100). The WSGI servers and Celery keep theirs."""
    probe = (
        "import django.conf, alertwhisperer.{module}; "
        "print(django.conf.settings.DATABASES['default']['CONN_MAX_AGE'])"
    )
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}
    env.pop("DATABASE_CONN_MAX_AGE", None)
    ages = {
        module: subprocess.run(
            [sys.executable, "-c", probe.format(module=module)],
            env={**env, "DJANGO_SETTINGS_MODULE": "alertwhisperer.settings"},
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.split()[-1]
        for module in ("asgi", "wsgi")
    }
    assert ages == {"asgi": "0", "wsgi": "60"}


@pytest.mark.parametrize("configured", ["", "5s"])
def test_web_requests_have_a_statement_timeout_and_workers_none(configured):
    """The web servers' connections have a statement timeout (30 s, or WEB_STATEMENT_TIMEOUT)
    so that a query that runs away answers 503 instead of running on after the client gave
    up; Celery and management commands, whose retention and seeding statements may run
    long, have none even with the variable in their (shared) environment. Read from a real
    PostgreSQL connection of each entry point."""
    probe = (
        "import django, {module}; from django.db import connection; django.setup(); "
        "cursor = connection.cursor(); cursor.execute('SHOW statement_timeout'); "
        "print(cursor.fetchone()[0])"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "DJANGO_SETTINGS_MODULE": "alertwhisperer.settings",
    }
    env.pop("AW_SERVER", None)
    env.pop("WEB_STATEMENT_TIMEOUT", None)
    if configured:
        env["WEB_STATEMENT_TIMEOUT"] = configured
    timeouts = {
        module: subprocess.run(
            [sys.executable, "-c", probe.format(module=module)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.split()[-1]
        for module in (
            "alertwhisperer.asgi",
            "alertwhisperer.wsgi",
            "alertwhisperer.webhooks_wsgi",
            "alertwhisperer.celery",
            "django.core.management",
        )
    }
    web = configured or "30s"
    assert timeouts == {
        "alertwhisperer.asgi": web,
        "alertwhisperer.wsgi": web,
        "alertwhisperer.webhooks_wsgi": web,
        "alertwhisperer.celery": "0",
        "django.core.management": "0",
    }


def test_a_statement_timeout_that_is_not_a_duration_stops_the_start():
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "DJANGO_SETTINGS_MODULE": "alertwhisperer.settings",
        "WEB_STATEMENT_TIMEOUT": "30s -c search_path=evil",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "WEB_STATEMENT_TIMEOUT must be a whole number of ms, s or min" in result.stderr
