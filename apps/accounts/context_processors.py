"""What every page's frame needs: the user's companies, the selected one, the nav links the
role allows and the unread notification count."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.accounts.permissions import Action, can, is_msp_admin, member_company_ids
from apps.accounts.selection import selected_company, visible_companies_list
from apps.notifications.selectors import unread_count


def frame(request: HttpRequest) -> dict:
    """Lazy values: a partial that uses none of them costs no query."""
    user = request.user
    if not user.is_authenticated:
        return {}

    def manages_a_company() -> bool:
        return is_msp_admin(user) or any(
            can(user, Action.MANAGE_COMPANY, cid) for cid in member_company_ids(user)
        )

    return {
        "nav_companies": SimpleLazyObject(lambda: visible_companies_list(request)),
        "selected_company": SimpleLazyObject(lambda: selected_company(request)),
        "is_msp_admin": SimpleLazyObject(lambda: is_msp_admin(user)),
        "can_manage_any_company": SimpleLazyObject(manages_a_company),
        "unread_notifications": SimpleLazyObject(lambda: unread_count(user_id=user.pk)),
    }
