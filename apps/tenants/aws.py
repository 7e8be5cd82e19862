"""Clients for a company's AWS account, through its AWS link.

The platform's own credentials (the usual boto3 chain) call STS AssumeRole on the
company's role with the company's External ID for 15-minute credentials. Clients built on
them are cached per process and rebuilt shortly before the credentials expire. Errors are
turned into plain words for the incident page and the audit log.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)
from django.conf import settings

from apps.common.errors import ApplicationError
from apps.tenants.models import AwsLink, Company

SESSION_SECONDS = 900
REFRESH_MARGIN_SECONDS = 120
RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=20
)
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}


class AwsNotLinked(ApplicationError):
    status_code = 409
    code = "aws_not_linked"


class AwsError(ApplicationError):
    """An AWS call failed; ``message`` says what happened in plain words."""

    status_code = 502
    code = "aws_error"

    def __init__(self, message: str, *, aws_code: str = "", throttled: bool = False) -> None:
        super().__init__(message)
        self.aws_code = aws_code
        self.throttled = throttled


@dataclass
class _Cached:
    client: Any
    expires_at: float


_lock = threading.Lock()
_clients: dict[tuple, _Cached] = {}


def link_of(company: Company) -> AwsLink:
    link = AwsLink.objects.filter(company=company).first()
    if link is None or not link.is_configured:
        raise AwsNotLinked(
            f"{company.name} has no AWS link: add its role ARN at /runbooks/aws/{company.slug}/."
        )
    return link


def client_for(company: Company, service: str) -> Any:
    """A client for ``service`` in the company's account and region."""
    link = link_of(company)
    key = (company.pk, link.role_arn, link.external_id, link.region, service)
    now = time.time()
    with _lock:
        cached = _clients.get(key)
        if cached is not None and cached.expires_at - REFRESH_MARGIN_SECONDS > now:
            return cached.client
    credentials = assume_role(link)
    try:
        client = boto3.client(
            service,
            region_name=link.region,
            endpoint_url=settings.AWS_ENDPOINT_URL,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=RETRIES,
        )
    except BotoCoreError as error:
        raise explain(error, doing=f"use {service} in {link.region}") from error
    with _lock:
        _clients[key] = _Cached(client, credentials["Expiration"].timestamp())
    return client


def call(client: Any, operation: str, *, doing: str, **params: Any) -> dict:
    """``client.<operation>(**params)``, with AWS's errors turned into AwsError."""
    try:
        return getattr(client, operation)(**params)
    except (ClientError, BotoCoreError) as error:
        raise explain(error, doing=doing) from error


def forget_clients(company_id: int | None = None) -> None:
    """Drop cached clients (all, or one company's), e.g. after its AWS link changed."""
    with _lock:
        for key in [k for k in _clients if company_id is None or k[0] == company_id]:
            del _clients[key]


def assume_role(link: AwsLink) -> dict:
    try:
        sts = boto3.client(
            "sts", region_name=link.region, endpoint_url=settings.AWS_ENDPOINT_URL, config=RETRIES
        )
        response = sts.assume_role(
            RoleArn=link.role_arn,
            RoleSessionName=f"alert-whisperer-{link.company_id}",
            ExternalId=link.external_id,
            DurationSeconds=SESSION_SECONDS,
        )
    except (ClientError, BotoCoreError) as error:
        raise explain(error, doing=f"assume the role {link.role_arn}") from error
    return response["Credentials"]


def explain(error: Exception, *, doing: str) -> AwsError:
    """An AwsError whose message says, in plain words, what went wrong and what to check."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        detail = error.response.get("Error", {}).get("Message", "")
        if "<" in detail:  # an HTML error page from a proxy or an emulator, not AWS's words
            detail = "the service answered with an error page"
        if code in THROTTLING_CODES:
            return AwsError(
                f"AWS is throttling requests while trying to {doing}; it will be retried.",
                aws_code=code,
                throttled=True,
            )
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            hint = (
                " Check the role's trust policy names Alert Whisperer's account and this "
                "company's External ID."
                if "assume" in doing
                else " Check the role's permissions policy allows this action."
            )
            return AwsError(f"Access denied when trying to {doing}.{hint}", aws_code=code)
        if code in {"InvalidInstanceId", "InvalidInstanceInformationFilterValue"}:
            return AwsError(
                f"Could not {doing}: the instance is not managed by Systems Manager, not "
                "running, or not in this account and region.",
                aws_code=code,
            )
        if code == "InvocationDoesNotExist":
            return AwsError(f"Could not {doing}: the command has no result yet.", aws_code=code)
        return AwsError(f"AWS refused to {doing}: {code}: {detail}".strip(), aws_code=code)
    if isinstance(error, ProfileNotFound | NoCredentialsError | PartialCredentialsError):
        return AwsError(
            f"Could not {doing}: Alert Whisperer's own AWS credentials are not usable "
            f"({error}). Check AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY on "
            "the server."
        )
    return AwsError(f"Could not reach AWS to {doing}: {error}.")
