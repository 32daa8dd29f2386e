"""Protect the read API with Airflow's own authentication and authorization.

Airflow 3 mounts a plugin's FastAPI app with ``app.mount()``: the app inherits none of the core
API's router dependencies, so without this module every route would answer anonymous callers.

:func:`require_reader` does what the core API's ``requires_access_asset("GET")`` does:

* the caller is identified by Airflow's own ``get_user`` — a ``Authorization: Bearer <JWT>``
  header (from ``POST /auth/token``) or the UI's session cookie — and the auth manager
  validates the token (401 without credentials or with an expired token, 403 for a bad one);
* the configured auth manager must then allow ``GET`` on Assets: the API serves the contents of
  krxflow's tables, which are Airflow Assets (:mod:`krxflow.assets`). With the simple auth
  manager that is any role from Viewer up; with FAB/Keycloak it is whatever the deployment grants.

Airflow's security module costs ~2 s to import, so it is imported on the first request rather
than when the plugin loads (plugins are loaded by every Airflow component, not just the api-server).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

#: Reads the bearer token without failing, so that the cookie path and Airflow's own error
#: messages apply; also documents the scheme in /krx/docs.
bearer_scheme = HTTPBearer(auto_error=False, description="An Airflow JWT from POST /auth/token.")


async def require_reader(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Any:
    """The Airflow user making the request, when allowed to read krxflow's Assets; else 401/403."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api import security

    user = await security.get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_asset(method="GET", user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: reading krxflow data needs GET access to Assets")
    return user
