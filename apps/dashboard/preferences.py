"""The viewer's own preferences: for now the time zone the console shows times in."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.accounts.models import User
from apps.audit.services import record
from apps.dashboard.templatetags.console_time import viewer_zone, zone_names


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label="Time zone", required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            ("", "My browser's zone"),
            *((zone, zone) for zone in sorted(zone_names())),
        ]


def user_time_zone_set(*, user: User, time_zone: str) -> None:
    previous = user.time_zone
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    record(
        action="preference_changed",
        actor=user,
        target=user,
        details={"time_zone": time_zone, "previous": previous},
    )


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            user_time_zone_set(user=request.user, time_zone=form.cleaned_data["time_zone"])
            messages.success(request, f"Times are now shown in {viewer_zone(request)}.")
            return redirect("dashboard:preferences")
    else:
        form = TimeZoneForm(initial={"time_zone": request.user.time_zone})
    return render(
        request, "dashboard/preferences.html", {"form": form, "zone": viewer_zone(request)}
    )
