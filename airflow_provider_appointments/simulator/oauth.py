"""The OAuth token endpoint ``POST /oauth/{version}/token``: reads the form and hands it to the
auth policy (`auth.Authenticator`), which decides on grants, tokens and errors."""

from __future__ import annotations

from urllib.parse import parse_qsl

from airflow_provider_appointments.simulator.auth import Authenticator
from airflow_provider_appointments.simulator.errors import HubSpotHTTPError
from airflow_provider_appointments.simulator.routing import Call, Reply

OAUTH_VERSIONS = frozenset({"v1", "v3", "2026-03"})


class OAuthAPI:
    """The token endpoint, bound to the simulator's authenticator.

    :param auth: the auth policy that issues and checks tokens.
    """

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def token(self, call: Call) -> Reply:
        """The refresh-token grant; the body is ``application/x-www-form-urlencoded``, not JSON."""
        version = call.params["oauth_version"]
        if version not in OAUTH_VERSIONS:
            raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND", f"There is no OAuth API version {version}.")
        form = dict(parse_qsl(call.raw_body.decode("utf-8", "replace"), keep_blank_values=True))
        if version == "v1":  # v1 also took client_secret and refresh_token as query parameters
            form = {**dict(call.query.items()), **form}
        return Reply(200, self.auth.token_grant(form))
