from django.core.management.base import BaseCommand, CommandError

from apps.dashboard.demo import DEFAULT_SECONDS, run_storm
from apps.tenants.models import Company


class Command(BaseCommand):
    help = (
        "Send a realistic alert storm for a company (Alertmanager, Datadog and generic bodies, "
        "duplicates, a recurring fault, resolutions) through the webhook."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--company", default="acme", help="Company slug (default: acme).")
        parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
        parser.add_argument(
            "--url", default="", help="Post over HTTP to this server, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--api-key", default="", help="The company's API key (with --url).")

    def handle(
        self, *args, company: str, seconds: float, url: str, api_key: str, **options
    ) -> None:
        target = Company.objects.filter(slug=company).first()
        if target is None:
            raise CommandError(f"No company with slug {company!r}.")
        if url and not api_key:
            raise CommandError("--url needs the company's --api-key.")
        self.stdout.write(f"Sending an alert storm to {target.name} over {seconds:.0f} s…")
        report = run_storm(company=target, seconds=seconds, url=url, api_key=api_key)
        self.stdout.write(
            self.style.SUCCESS(f"{report.deliveries} deliveries, {report.alerts} alerts accepted.")
        )
        for line in report.refused:
            self.stdout.write(self.style.WARNING(f"refused {line}"))
