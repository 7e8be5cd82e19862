"""What every page's frame needs: the user's companies, the selected one, the nav links the
role allows and the unread notification count."""

from django.http import HttpRequest

from apps.accounts.permissions import Action, can, is_msp_admin, member_company_ids
from apps.accounts.selection import selected_company, visible_companies_list
from apps.notifications.selectors import unread_count


def frame(request: HttpRequest) -> dict:
    user = request.user
    if not user.is_authenticated:
        return {}
    companies = visible_companies_list(request)
    msp = is_msp_admin(user)
    managed = msp or any(can(user, Action.MANAGE_COMPANY, cid) for cid in member_company_ids(user))
    return {
        "nav_companies": companies,
        "selected_company": selected_company(request),
        "is_msp_admin": msp,
        "can_manage_any_company": managed,
        "unread_notifications": unread_count(user_id=user.pk),
    }
