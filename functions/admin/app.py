"""Admin function: the merchant's API under /admin/*. API Gateway's AdminJwt authorizer admits only verified
tokens of the operators' user pool; each route names the groups it allows (storefront.auth)."""

from aws_lambda_powertools import Logger
from fastapi import Response
from pydantic import BaseModel, Field

from storefront.auth import Operator
from storefront.http import create_app, problem_responses, unauthorized_responses
from storefront.observability import http_handler

logger = Logger()
app = create_app("Storefront admin", "The merchant's admin API. Every route takes `Authorization: Bearer <JWT>` "
                                     "of the operators' Cognito user pool.")


class Me(BaseModel):
    """Who the token says the caller is: what the admin page shows and uses to offer only what the groups allow."""

    sub: str
    username: str
    email: str | None = Field(default=None, description="Present when the token carries it (ID tokens)")
    groups: list[str]


@app.get("/admin/me", response_model=Me, response_model_exclude_none=True,
         responses={**unauthorized_responses(), **problem_responses(403, 500)})
def get_me(actor: Operator) -> Response:
    me = Me(sub=actor.sub, username=actor.username, email=actor.email, groups=list(actor.groups))
    return Response(me.model_dump_json(exclude_none=True), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


handler = http_handler(app, logger)
