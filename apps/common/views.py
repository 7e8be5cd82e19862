from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused form in the product's own words, not Django's debug page."""
    return render(request, "403_csrf.html", status=403)
