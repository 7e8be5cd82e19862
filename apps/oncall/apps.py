from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "apps.oncall"
    verbose_name = "On call and escalation"

    def ready(self) -> None:
        from apps.incidents.selectors import register_on_call_provider
        from apps.incidents.services import incident_reopened, incidents_opened
        from apps.oncall import receivers
        from apps.oncall.selectors import on_call_user_ids

        register_on_call_provider(on_call_user_ids)
        incidents_opened.connect(receivers.start_escalations, dispatch_uid="oncall-escalate")
        incident_reopened.connect(receivers.restart_escalation, dispatch_uid="oncall-reopen")
