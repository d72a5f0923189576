"""The LiteLLM-compatible admin API: ``/key/*``, ``/user/*``, ``/team/*``, ``/organization/*``,
``/model/*``, ``/usage-plan/*``, spend and audit queries — one module per resource, a few lines per
handler over the ``admin`` services (which enforce the matrix and audit every write).

Every route is an ``AdminRoute`` (``route.py``): authenticated once, gated by ``admin.matrix``,
before its body is parsed (once, by FastAPI). (No ``from __future__ import annotations`` in this
package: FastAPI must see the handlers' real annotations.)
"""

from collections.abc import Callable, Sequence

from fastapi import APIRouter

from tollgate.admin import AdminServices
from tollgate.admin.spend import SpendService
from tollgate.config import Deployment
from tollgate.edge.admin.audit import add_audit_routes
from tollgate.edge.admin.keys import add_key_routes
from tollgate.edge.admin.models import add_model_routes
from tollgate.edge.admin.orgs import add_org_routes
from tollgate.edge.admin.route import Authenticate, admin_route_class, error_response, render_admin_error
from tollgate.edge.admin.spend import add_spend_routes
from tollgate.edge.admin.teams import add_team_routes
from tollgate.edge.admin.usage_plans import add_usage_plan_routes
from tollgate.edge.admin.users import add_user_routes

__all__ = ["admin_router", "error_response", "render_admin_error"]


def admin_router(
    services: AdminServices,
    authenticate: Authenticate,
    deployments: Callable[[], Sequence[Deployment]] = tuple,
) -> APIRouter:
    """``deployments`` gives the deployments currently served (config ones are listed by /model/info)."""
    router = APIRouter(tags=["admin"], route_class=admin_route_class(authenticate))
    add_key_routes(router, services.keys)
    add_user_routes(router, services.users)
    add_team_routes(router, services.teams)
    add_org_routes(router, services.orgs)
    add_model_routes(router, services.deployments, deployments)
    add_usage_plan_routes(router, services.plans)
    add_spend_routes(router, SpendService(services.store))
    add_audit_routes(router, services.audit)
    return router
