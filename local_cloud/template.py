"""template.yaml as data: parameters, globals, resources, and a resolver for CloudFormation intrinsics.

Only what the local cloud needs is resolved; anything else fails loudly rather than being guessed.
"""

from __future__ import annotations

import copy
import functools
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"


# libyaml's parser where PyYAML was built with it (its wheels are): the template parses ten times faster, and the
# test suite parses it a few hundred times.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) turned into long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(text: str) -> dict[str, Any]:
    """The document as data, a fresh copy each call (callers may change it)."""
    return pickle.loads(_parsed(text))  # noqa: S301 - bytes this module pickled itself


@functools.lru_cache(maxsize=16)
def _parsed(text: str) -> bytes:
    """Parsing template.yaml takes 30 ms even with libyaml, and the tools and tests of one process (the restore
    tool, every local cloud, the template tests) parse the same text hundreds of times; a copy from the pickled
    parse takes 1 ms."""
    return pickle.dumps(yaml.load(text, Loader=_CfnLoader))  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id
    authorizer: str | None = None  # the name of the HttpApi authorizer the route's `Auth` names; None: public

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Schedule:
    name: str  # the event's name in the function's Events (what /dev/schedules/{name}/run takes)
    function: str  # logical id
    expression: str  # rate(5 minutes), ...

    @property
    def seconds(self) -> float:
        """A rate() expression's period; ValueError for what the local cloud does not play (cron, at)."""
        match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", self.expression.strip())
        if match is None:
            raise ValueError(
                f"schedule {self.name}: only rate() expressions are played locally, not {self.expression!r}"
            )
        unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
        return int(match.group(1)) * unit


@dataclass
class Template:
    data: dict[str, Any]
    stack_name: str = "storefront-local"
    region: str = "us-east-1"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # logical id -> what Ref and GetAtt return; filled in by the cloud as it creates resources
    physical: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH, **kwargs: Any) -> Template:
        return cls(load_yaml(path.read_text()), **kwargs)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this stack has: those whose `Condition` is false do not exist, as in CloudFormation."""
        return {
            lid: r
            for lid, r in self.data["Resources"].items()
            if "Condition" not in r or self.condition(r["Condition"])
        }

    def condition(self, name: str) -> bool:
        """A named condition of the template's Conditions section, evaluated with the stack's parameters."""
        return bool(self._evaluate(self.data.get("Conditions", {})[name]))

    def _evaluate(self, value: Any) -> Any:
        """A condition function (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) or a value to resolve."""
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Condition":
                return self.condition(arg)
            if name == "Fn::Equals":
                left, right = (self._evaluate(v) for v in arg)
                return str(left) == str(right)
            if name == "Fn::Not":
                return not self._evaluate(arg[0])
            if name == "Fn::And":
                return all(self._evaluate(v) for v in arg)
            if name == "Fn::Or":
                return any(self._evaluate(v) for v in arg)
        return self.resolve(value)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == resource_type}

    def parameter(self, name: str) -> Any:
        spec = self.data.get("Parameters", {})[name]
        value = self.parameter_overrides.get(name, spec.get("Default"))
        if value is None:
            raise KeyError(f"parameter {name} has no default and no override")
        if spec["Type"] == "CommaDelimitedList":
            return [v.strip() for v in str(value).split(",")]
        return str(value)

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with Globals merged the way SAM merges them."""
        merged = copy.deepcopy(self.data.get("Globals", {}).get("Function", {}))
        for key, value in self.resources[logical_id]["Properties"].items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _deep_merge(merged[key], value)
            elif isinstance(value, list) and isinstance(merged.get(key), list):  # SAM: lists are additive
                merged[key] = merged[key] + value
            else:
                merged[key] = copy.deepcopy(value)
        return merged

    def routes(self) -> list[Route]:
        routes = []
        for logical_id in self.of_type("AWS::Serverless::Function"):
            for event in self.resources[logical_id]["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    props = event["Properties"]
                    auth = props.get("Auth", {})
                    if set(auth) - {"Authorizer"}:
                        raise NotImplementedError(f"{logical_id}: the local cloud does not emulate Auth {sorted(auth)}")
                    authorizer = auth.get("Authorizer")
                    routes.append(
                        Route(
                            props["Method"].upper(),
                            props["Path"],
                            logical_id,
                            None if authorizer in (None, "NONE") else authorizer,
                        )
                    )
        return routes

    def schedules(self) -> list[Schedule]:
        """The functions' schedule events (SAM's ScheduleV2, an EventBridge Scheduler schedule; Schedule, a rule)."""
        return [
            Schedule(name, logical_id, str(self.resolve(event["Properties"]["ScheduleExpression"])))
            for logical_id in self.of_type("AWS::Serverless::Function")
            for name, event in self.resources[logical_id]["Properties"].get("Events", {}).items()
            if event["Type"] in ("ScheduleV2", "Schedule")
        ]

    # ---------------------------------------------------------------- intrinsics

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function resolved; `!Ref AWS::NoValue` removes its key or list item."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if name == "Ref":
                return self._ref(arg)
            if name == "Fn::If":
                condition, if_true, if_false = arg
                return self.resolve(if_true if self.condition(condition) else if_false)
            if name == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if name == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text)).split(delimiter)
            if name == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._physical(logical_id)[attribute]
            if name == "Fn::Sub":
                return self._sub(arg)
            if name == "Fn::Join":
                delimiter, parts = arg
                return delimiter.join(str(p) for p in self.resolve(parts))
            if name.startswith("Fn::"):
                raise NotImplementedError(f"the local cloud does not resolve {name} yet")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def _ref(self, name: str) -> Any:
        if (pseudo := self._pseudo(name)) is not None:
            return pseudo
        if name in self.data.get("Parameters", {}):
            return self.parameter(name)
        if name.endswith(".Alias"):  # SAM: `!Ref MyFunction.Alias` is the ARN of the AutoPublishAlias alias
            return self._physical(name.removesuffix(".Alias"))["Alias"]
        return self._physical(name)["Ref"]

    def _physical(self, logical_id: str) -> dict[str, str]:
        if logical_id not in self.physical:
            raise KeyError(f"{logical_id} is referenced before the local cloud created it")
        return self.physical[logical_id]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._physical(logical_id)[attribute]
            resolved = self._ref(name)
            return ",".join(resolved) if isinstance(resolved, list) else str(resolved)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


_NO_VALUE = object()  # what `!Ref AWS::NoValue` resolves to, before its key or item is dropped


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
