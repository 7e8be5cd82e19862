"""``{% asset_dependencies company can_manage %}``: the company page's dependency card."""

from django import template

from apps.tenants.models import AssetDependency, Company

register = template.Library()
SHOWN = 200


@register.inclusion_tag("tenants/partials/_dependencies.html", takes_context=True)
def asset_dependencies(context: template.Context, company: Company, can_manage: bool) -> dict:
    edges = list(
        AssetDependency.objects.filter(company=company)
        .select_related("asset", "depends_on")
        .order_by("asset__name", "depends_on__name")[: SHOWN + 1]
    )
    graph: dict[str, list[AssetDependency]] = {}
    for edge in edges[:SHOWN]:
        graph.setdefault(edge.asset.name, []).append(edge)
    return {
        "company": company,
        "graph": graph,
        "more": len(edges) > SHOWN,
        "can_manage": can_manage,
        "csrf_token": context.get("csrf_token"),
    }
