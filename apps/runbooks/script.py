"""The script an execution sends with AWS-RunShellScript or AWS-RunPowerShellScript: the
runbook's actions, then its health check, which prints a marker line the poller reads back.
Both shells stop at the first failing action."""

from __future__ import annotations

import re
import shlex

from apps.runbooks.choices import HealthCheckType, Kind
from apps.runbooks.models import Runbook

STATUS_MARKER = "AW_HEALTH_STATUS="
EXIT_MARKER = "AW_HEALTH_EXIT="
MAX_OUTPUT = 24_000


def build_script(runbook: Runbook) -> str:
    """The script for the runbook's kind; empty for an Automation runbook."""
    if runbook.kind == Kind.POWERSHELL:
        return _powershell(runbook)
    if runbook.kind == Kind.AUTOMATION:
        return ""
    return _shell(runbook)


def _shell(runbook: Runbook) -> str:
    lines = ["set -e", *runbook.actions]
    if runbook.health_check_type == HealthCheckType.HTTP:
        url = shlex.quote(runbook.health_check_url)
        lines += [
            f"aw_status=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 15 {url} || true)",
            f'echo "{STATUS_MARKER}$aw_status"',
            f'[ "$aw_status" = "{runbook.health_check_status}" ]',
        ]
    elif runbook.health_check_type == HealthCheckType.COMMAND:
        lines += [
            "set +e",
            runbook.health_check_command,
            "aw_rc=$?",
            f'echo "{EXIT_MARKER}$aw_rc"',
            f'[ "$aw_rc" -eq {runbook.health_check_exit_code} ]',
        ]
    return "\n".join(lines)


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _powershell(runbook: Runbook) -> str:
    # A native command's non-zero exit does not stop PowerShell 5.1: each action is
    # followed by a check of $LASTEXITCODE.
    lines = ["$ErrorActionPreference = 'Stop'"]
    for action in runbook.actions:
        lines += [action, "if ($LASTEXITCODE) { exit $LASTEXITCODE }"]
    if runbook.health_check_type == HealthCheckType.HTTP:
        url = _ps_quote(runbook.health_check_url)
        lines += [
            "try { $aw_status = (Invoke-WebRequest -UseBasicParsing -TimeoutSec 15 "
            f"-Uri {url}).StatusCode }} catch {{ $aw_status = "
            "[int]$_.Exception.Response.StatusCode }",
            f'Write-Output "{STATUS_MARKER}$aw_status"',
            f'if ("$aw_status" -ne "{runbook.health_check_status}") {{ exit 1 }}',
        ]
    elif runbook.health_check_type == HealthCheckType.COMMAND:
        lines += [
            "$ErrorActionPreference = 'Continue'",
            "$global:LASTEXITCODE = 0",
            runbook.health_check_command,
            "$aw_rc = $LASTEXITCODE",
            f'Write-Output "{EXIT_MARKER}$aw_rc"',
            f"if ($aw_rc -ne {runbook.health_check_exit_code}) {{ exit 1 }}",
        ]
    return "\n".join(lines)


def health_check_result(runbook: Runbook, output: str) -> bool | None:
    """True/False when the script printed its health marker, None without a health check
    or when the actions failed before reaching it."""
    if runbook.health_check_type == HealthCheckType.HTTP:
        found = re.findall(rf"^{STATUS_MARKER}(\d*)\s*$", output, re.MULTILINE)
        return found[-1] == str(runbook.health_check_status) if found else None
    if runbook.health_check_type == HealthCheckType.COMMAND:
        found = re.findall(rf"^{EXIT_MARKER}(\d+)\s*$", output, re.MULTILINE)
        return int(found[-1]) == runbook.health_check_exit_code if found else None
    return None


def clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT:
        return text
    return text[: MAX_OUTPUT // 2] + "\n… output truncated …\n" + text[-MAX_OUTPUT // 2 :]
