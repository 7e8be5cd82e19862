"""Which runbook matches a signature: exact or glob, the company's own first."""

import pytest

from apps.runbooks.matching import runbook_for
from tests.factories import CompanyFactory
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db


def test_exact_and_glob_patterns():
    company = CompanyFactory()
    nginx = RunbookFactory(signature_pattern="service_down:*", name="Restart service")
    assert runbook_for(company=company, signature="service_down:nginx") == nginx
    assert runbook_for(company=company, signature="service_down") is None
    assert runbook_for(company=company, signature="disk_full") is None


def test_company_runbook_wins_over_msp_wide():
    acme, globex = CompanyFactory(), CompanyFactory()
    msp = RunbookFactory(signature_pattern="disk_full", name="Clean logs (MSP)")
    own = RunbookFactory(company=acme, signature_pattern="disk_*", name="Acme cleanup")
    assert runbook_for(company=acme, signature="disk_full") == own
    assert runbook_for(company=globex, signature="disk_full") == msp


def test_exact_wins_over_glob_and_longer_glob_over_shorter():
    company = CompanyFactory()
    RunbookFactory(signature_pattern="service_down:*", name="Any service")
    nginx_glob = RunbookFactory(signature_pattern="service_down:ng*", name="Nginx-ish")
    assert runbook_for(company=company, signature="service_down:nginx") == nginx_glob
    exact = RunbookFactory(signature_pattern="service_down:nginx", name="Nginx exactly")
    assert runbook_for(company=company, signature="service_down:nginx") == exact


def test_disabled_and_other_companies_runbooks_are_ignored():
    acme, globex = CompanyFactory(), CompanyFactory()
    RunbookFactory(signature_pattern="disk_full", enabled=False)
    RunbookFactory(company=globex, signature_pattern="disk_full")
    assert runbook_for(company=acme, signature="disk_full") is None


def test_matching_is_case_sensitive():
    company = CompanyFactory()
    RunbookFactory(signature_pattern="HighCPU")
    assert runbook_for(company=company, signature="highcpu") is None
