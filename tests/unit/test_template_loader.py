"""local_cloud.template: CloudFormation short tags, intrinsics, Globals, routes."""

from __future__ import annotations

import pytest

from local_cloud.template import Template, load_yaml

DOC = """
Parameters:
  Stage: { Type: String, Default: dev }
  Origins: { Type: CommaDelimitedList, Default: "http://a,http://b" }
Globals:
  Function:
    Runtime: python3.13
    Layers: [!Ref Layer]
    Environment: { Variables: { STAGE: !Ref Stage, LOG_LEVEL: INFO } }
Resources:
  Layer: { Type: AWS::Serverless::LayerVersion, Properties: { ContentUri: layers/x/ } }
  Table: { Type: AWS::DynamoDB::Table, Properties: {} }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Layers: [!Ref Other]
      Environment: { Variables: { TABLE: !Ref Table, LOG_LEVEL: DEBUG, ARN: !GetAtt Table.Arn } }
      Events:
        Get: { Type: HttpApi, Properties: { Method: get, Path: "/things/{id}" } }
        Q: { Type: SQS, Properties: { Queue: !GetAtt Table.Arn } }
"""


@pytest.fixture
def template() -> Template:
    t = Template(load_yaml(DOC), stack_name="s", parameter_overrides={"Stage": "prod"})
    t.physical.update({"Table": {"Ref": "s-Table", "Arn": "arn:table"}, "Layer": {"Ref": "L1"}, "Other": {"Ref": "L2"}})
    return t


def test_short_tags_become_long_form() -> None:
    data = load_yaml("a: !Ref X\nb: !GetAtt T.Arn\nc: !Sub '${AWS::Region}-x'\nd: !Join [',', [a, b]]")
    assert data == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["T", "Arn"]},
        "c": {"Fn::Sub": "${AWS::Region}-x"},
        "d": {"Fn::Join": [",", ["a", "b"]]},
    }


def test_intrinsics(template: Template) -> None:
    assert template.resolve({"Ref": "Stage"}) == "prod"  # override beats default
    assert template.resolve({"Ref": "Origins"}) == ["http://a", "http://b"]
    assert template.resolve({"Fn::GetAtt": ["Table", "Arn"]}) == "arn:table"
    assert (
        template.resolve({"Fn::Sub": "${AWS::StackName}/${Table}/${Table.Arn}/${!Literal}"})
        == "s/s-Table/arn:table/${Literal}"
    )
    assert template.resolve({"Fn::Sub": ["${x}-${Stage}", {"x": {"Ref": "Table"}}]}) == "s-Table-prod"
    assert template.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-prod"


def test_unresolvable_intrinsics_fail_loudly(template: Template) -> None:
    with pytest.raises(NotImplementedError):
        template.resolve({"Fn::GetAZs": ""})
    with pytest.raises(KeyError):
        template.resolve({"Fn::If": ["NoSuchCondition", 1, 2]})
    with pytest.raises(KeyError):
        template.resolve({"Ref": "NotCreatedYet"})


def test_globals_merge_like_sam(template: Template) -> None:
    props = template.resolve(template.function_properties("Fn"))
    assert props["Runtime"] == "python3.13"
    assert props["Layers"] == ["L1", "L2"]  # global layers first, then the function's
    assert props["Environment"]["Variables"] == {
        "STAGE": "prod",
        "LOG_LEVEL": "DEBUG",
        "TABLE": "s-Table",
        "ARN": "arn:table",
    }


def test_routes_are_the_http_api_events(template: Template) -> None:
    [route] = template.routes()
    assert (route.method, route.path, route.function, route.route_key) == (
        "GET",
        "/things/{id}",
        "Fn",
        "GET /things/{id}",
    )


CONDITIONAL = """
Parameters:
  Stage: { Type: String, Default: dev }
  Email: { Type: String, Default: "" }
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  HasEmail: !Not [!Equals [!Ref Email, ""]]
  ProdWithEmail: !And [!Condition IsProd, !Condition HasEmail]
  ProdOrEmail: !Or [!Condition IsProd, !Condition HasEmail]
Resources:
  Always: { Type: AWS::SNS::Topic, Properties: { TopicName: !If [IsProd, prod-topic, !Ref AWS::NoValue] } }
  OnlyInProd: { Type: AWS::SNS::Topic, Condition: IsProd, Properties: {} }
  Listy:
    Type: AWS::SNS::Topic
    Properties:
      Items: [a, !If [HasEmail, !Ref Email, !Ref AWS::NoValue], !Select [1, !Split [",", "x,y,z"]]]
"""


@pytest.mark.parametrize(
    ("overrides", "present", "conditions"),
    [
        ({}, {"Always", "Listy"}, {"IsProd": False, "HasEmail": False, "ProdWithEmail": False, "ProdOrEmail": False}),
        (
            {"Stage": "prod"},
            {"Always", "Listy", "OnlyInProd"},
            {"IsProd": True, "HasEmail": False, "ProdWithEmail": False, "ProdOrEmail": True},
        ),
        (
            {"Stage": "prod", "Email": "a@b.c"},
            {"Always", "Listy", "OnlyInProd"},
            {"IsProd": True, "HasEmail": True, "ProdWithEmail": True, "ProdOrEmail": True},
        ),
    ],
)
def test_conditions_decide_which_resources_exist(
    overrides: dict[str, str], present: set[str], conditions: dict[str, bool]
) -> None:
    template = Template(load_yaml(CONDITIONAL), parameter_overrides=overrides)
    assert set(template.resources) == present
    assert {name: template.condition(name) for name in conditions} == conditions


def test_fn_if_and_no_value_drop_keys_and_items() -> None:
    dev = Template(load_yaml(CONDITIONAL))
    assert dev.resolve(dev.resources["Always"]["Properties"]) == {}
    assert dev.resolve(dev.resources["Listy"]["Properties"]) == {"Items": ["a", "y"]}
    prod = Template(load_yaml(CONDITIONAL), parameter_overrides={"Stage": "prod", "Email": "a@b.c"})
    assert prod.resolve(prod.resources["Always"]["Properties"]) == {"TopicName": "prod-topic"}
    assert prod.resolve(prod.resources["Listy"]["Properties"]) == {"Items": ["a", "a@b.c", "y"]}


def test_routes_carry_the_authorizer_their_auth_names() -> None:
    doc = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Private: { Type: HttpApi, Properties: { Method: GET, Path: /admin/me, Auth: { Authorizer: AdminJwt } } }
        Public: { Type: HttpApi, Properties: { Method: GET, Path: /products } }
        Opted: { Type: HttpApi, Properties: { Method: GET, Path: /health, Auth: { Authorizer: NONE } } }
"""
    routes = {route.path: route.authorizer for route in Template(load_yaml(doc)).routes()}
    assert routes == {"/admin/me": "AdminJwt", "/products": None, "/health": None}


def test_route_auth_it_cannot_emulate_fails_loudly() -> None:
    doc = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Scoped:
          Type: HttpApi
          Properties: { Method: GET, Path: /x, Auth: { Authorizer: AdminJwt, AuthorizationScopes: [x/read] } }
"""
    with pytest.raises(NotImplementedError):
        Template(load_yaml(doc)).routes()
