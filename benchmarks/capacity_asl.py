"""The order workflow's paths, walked through its ASL the way Step Functions runs and bills them.

A path is one way an order can go (paid, declined, expired, rejected). It is described by what happens, not by
the states it passes: which value a Choice state reads (`facts`), and which task fails with which error
(`failures`, keyed by the task's payload `action`, its service integration such as `sqs:sendMessage`, or its
state name). The walk follows the ASL from `StartAt` and records every state entered, every task run and every
retry, so a saga that gains states (payment retries, a question to the provider at the timeout, refunds) is
counted as it is. A path whose description no longer fits the ASL fails loudly (`PathError`): a fact or failure
that nothing uses, a Choice that reads a value the path does not give, an expected action that never runs, an
unexpected end. Fixing the description (PATHS in benchmarks/capacity.py) is then a conscious change.

Billing (Step Functions Standard): one state transition per state entered, Choice, Pass, Wait, Succeed and Fail
included, and one more per retry of a task; the states inside a Parallel branch are entered too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_VISITS = 25  # a state entered more often than this on one path is a loop the path does not end


class PathError(Exception):
    """The path's description does not fit the state machine (or uses ASL this walker does not model)."""


@dataclass(frozen=True)
class PathSpec:
    name: str
    description: str
    facts: dict[str, list[Any]] = field(default_factory=dict)  # JSONPath -> values, one per Choice that reads it
    failures: dict[str, list[str | None]] = field(default_factory=dict)  # task -> per run: error, or None (succeeds)
    must_run: tuple[str, ...] = ()  # tasks that must succeed on this path (action, integration or state name)
    must_not_run: tuple[str, ...] = ()
    ends: str = "succeeded"  # or "failed": how the execution ends


@dataclass(frozen=True)
class TaskRun:
    state: str
    resource: str  # e.g. arn:aws:states:::lambda:invoke.waitForTaskToken
    target: str | None  # the Lambda function or queue, as written in the ASL (a ${Substitution} here)
    action: str | None  # the payload's "action", for Lambda tasks
    error: str | None  # the error it ended with, None if it succeeded
    retries: int  # attempts after the first, as the Retry that matched the error allows

    @property
    def integration(self) -> str:
        """`lambda:invoke`, `sqs:sendMessage`, ... (the resource without its ARN prefix and .sync/.waitForTaskToken)."""
        service = self.resource.removeprefix("arn:aws:states:::")
        return service.split(".waitForTaskToken")[0].split(".sync")[0]

    @property
    def waits_for_callback(self) -> bool:
        return self.resource.endswith(".waitForTaskToken")

    @property
    def names(self) -> set[str]:
        return {n for n in (self.state, self.action, self.integration) if n}


@dataclass(frozen=True)
class Path:
    name: str
    description: str
    states: tuple[str, ...]  # in the order entered (Parallel branches inline)
    tasks: tuple[TaskRun, ...]
    ends: str

    @property
    def transitions(self) -> int:
        """What Step Functions Standard bills, and what its StateTransition bucket takes."""
        return len(self.states) + sum(t.retries for t in self.tasks)

    @property
    def callbacks(self) -> list[TaskRun]:
        """Callback tasks completed by SendTaskSuccess/SendTaskFailure (a timeout needs no call)."""
        return [t for t in self.tasks if t.waits_for_callback and t.error != "States.Timeout"]


def walk(definition: dict[str, Any], spec: PathSpec) -> Path:
    walker = _Walker(spec)
    ends = walker.run(definition)
    _check(spec, walker, ends)
    return Path(spec.name, spec.description, tuple(walker.states), tuple(walker.tasks), ends)


class _Walker:
    def __init__(self, spec: PathSpec) -> None:
        self.spec = spec
        self.states: list[str] = []
        self.tasks: list[TaskRun] = []
        self.visits: Counter[str] = Counter()
        self.facts_used: Counter[str] = Counter()
        self.failures_used: Counter[str] = Counter()

    def run(self, machine: dict[str, Any]) -> str:
        states = machine["States"]
        name = machine["StartAt"]
        while True:
            if name not in states:
                raise PathError(f"path {self.spec.name!r}: the ASL has no state {name!r}")
            state = states[name]
            self.visits[name] += 1
            if self.visits[name] > MAX_VISITS:
                raise PathError(
                    f"path {self.spec.name!r} loops through {name!r}: give it facts or failures that end the loop"
                )
            self.states.append(name)
            kind = state["Type"]
            if kind == "Succeed":
                return "succeeded"
            if kind == "Fail":
                return "failed"
            if kind == "Task":
                name_or_end = self._task(name, state)
            elif kind == "Choice":
                name_or_end = self._choice(name, state)
            elif kind in ("Pass", "Wait"):
                name_or_end = state.get("Next")
            elif kind == "Parallel":
                for branch in state["Branches"]:
                    if self.run(branch) == "failed":
                        raise PathError(
                            f"path {self.spec.name!r}: a branch of {name!r} fails; Parallel failures are not modelled"
                        )
                name_or_end = state.get("Next")
            else:  # Map: how many iterations is data, not ASL
                raise PathError(
                    f"path {self.spec.name!r}: {kind} state {name!r} is not modelled (the number of "
                    "iterations is not in the ASL); extend benchmarks/capacity_asl.py"
                )
            if name_or_end is None:
                if not state.get("End"):
                    raise PathError(f"{name!r} has neither Next nor End")
                return "succeeded"
            if isinstance(name_or_end, tuple):  # an uncaught error
                return "failed"
            name = name_or_end

    def _task(self, name: str, state: dict[str, Any]) -> str | tuple[str] | None:
        payload = (state.get("Parameters") or state.get("Arguments") or {}).get("Payload") or {}
        parameters = state.get("Parameters") or state.get("Arguments") or {}
        run = TaskRun(
            name,
            state["Resource"],
            parameters.get("FunctionName") or parameters.get("QueueUrl"),
            payload.get("action") if isinstance(payload, dict) else None,
            None,
            0,
        )
        error = self._failure(run)
        if error is None:
            self.tasks.append(run)
            return state.get("Next")
        retrier = next((r for r in state.get("Retry", []) if _matches(r["ErrorEquals"], error)), None)
        retries = int(retrier.get("MaxAttempts", 3)) if retrier else 0
        self.tasks.append(TaskRun(run.state, run.resource, run.target, run.action, error, retries))
        catcher = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], error)), None)
        return catcher["Next"] if catcher else ("uncaught",)

    def _failure(self, run: TaskRun) -> str | None:
        keys = [k for k in self.spec.failures if k in run.names]
        if not keys:
            return None
        if len(keys) > 1:
            raise PathError(f"path {self.spec.name!r}: task {run.state!r} is named twice in failures: {keys}")
        key = keys[0]
        outcomes = self.spec.failures[key]
        index = self.failures_used[key]
        if index >= len(outcomes):
            raise PathError(
                f"path {self.spec.name!r}: task {key!r} runs {index + 1} times, its failures say "
                f"what happens {len(outcomes)} times"
            )
        self.failures_used[key] += 1
        return outcomes[index]

    def _choice(self, name: str, state: dict[str, Any]) -> str:
        for rule in state["Choices"]:
            if self._holds(name, rule):
                return str(rule["Next"])
        if "Default" not in state:
            raise PathError(f"path {self.spec.name!r}: no rule of Choice {name!r} holds and it has no Default")
        return str(state["Default"])

    def _holds(self, name: str, rule: dict[str, Any]) -> bool:
        if "Condition" in rule:
            raise PathError(f"Choice {name!r} uses a JSONata Condition, which this walker does not evaluate")
        if "And" in rule:
            return all(self._holds(name, r) for r in rule["And"])
        if "Or" in rule:
            return any(self._holds(name, r) for r in rule["Or"])
        if "Not" in rule:
            return not self._holds(name, rule["Not"])
        variable = rule["Variable"]
        if variable not in self.spec.facts:
            raise PathError(
                f"path {self.spec.name!r}: Choice {name!r} reads {variable}, which the path's facts do not give"
            )
        values = self.spec.facts[variable]
        index = self.facts_used[variable]
        if index >= len(values):
            raise PathError(
                f"path {self.spec.name!r}: {variable} is read {index + 1} times, its facts give {len(values)} values"
            )
        self.facts_used[variable] += 1
        return _compare(rule, values[index])


def _compare(rule: dict[str, Any], value: Any) -> bool:
    for operator, operand in rule.items():
        if operator in ("Variable", "Next"):
            continue
        if operator == "IsPresent":
            return (value is not None) == operand
        if operator == "IsNull":
            return (value is None) == operand
        if operator.endswith("Path"):
            raise PathError(f"{operator} compares two variables; not modelled")
        base = operator.removeprefix("String").removeprefix("Numeric").removeprefix("Boolean").removeprefix("Timestamp")
        comparisons = {
            "Equals": lambda a, b: a == b,
            "LessThan": lambda a, b: a < b,
            "GreaterThan": lambda a, b: a > b,
            "LessThanEquals": lambda a, b: a <= b,
            "GreaterThanEquals": lambda a, b: a >= b,
        }
        if base not in comparisons:
            raise PathError(f"Choice operator {operator} is not modelled")
        return bool(comparisons[base](value, operand))
    raise PathError(f"a Choice rule without a comparison: {rule}")


def _matches(error_equals: list[str], error: str) -> bool:
    """ASL: States.ALL matches any error; States.TaskFailed any but States.Timeout."""
    return (
        error in error_equals
        or "States.ALL" in error_equals
        or ("States.TaskFailed" in error_equals and error != "States.Timeout")
    )


def _check(spec: PathSpec, walker: _Walker, ends: str) -> None:
    for key, outcomes in spec.failures.items():
        if walker.failures_used[key] != len(outcomes):
            raise PathError(
                f"path {spec.name!r}: task {key!r} was to run {len(outcomes)} time(s), it ran "
                f"{walker.failures_used[key]}: the ASL changed"
            )
    for variable, values in spec.facts.items():
        if walker.facts_used[variable] != len(values):
            raise PathError(
                f"path {spec.name!r}: {variable} was to be read {len(values)} time(s), it was read "
                f"{walker.facts_used[variable]}: the ASL changed"
            )
    succeeded = set().union(*(t.names for t in walker.tasks if t.error is None)) if walker.tasks else set()
    ran = set().union(*(t.names for t in walker.tasks)) if walker.tasks else set()
    missing = [m for m in spec.must_run if m not in succeeded]
    if missing:
        raise PathError(f"path {spec.name!r} no longer runs {missing}: it went {' -> '.join(walker.states)}")
    unexpected = [m for m in spec.must_not_run if m in ran]
    if unexpected:
        raise PathError(f"path {spec.name!r} runs {unexpected}, which it must not: {' -> '.join(walker.states)}")
    if ends != spec.ends:
        raise PathError(f"path {spec.name!r} {ends}, expected to have {spec.ends}: {' -> '.join(walker.states)}")


def invocations_on_error(definition: dict[str, Any], action: str, error: str) -> int:
    """How many times the task that runs `action` runs when it keeps failing with `error`: once, plus the attempts of
    the first Retry that matches (Step Functions' rule). PathError if no task runs it."""

    def runs(state: dict[str, Any]) -> bool:
        payload = (state.get("Parameters") or state.get("Arguments") or {}).get("Payload") or {}
        return state.get("Type") == "Task" and isinstance(payload, dict) and payload.get("action") == action

    tasks = [state for state in definition["States"].values() if runs(state)]
    if not tasks:
        raise PathError(f"no task of the workflow runs {action!r}")
    retrier = next((r for r in tasks[0].get("Retry", []) if _matches(r["ErrorEquals"], error)), None)
    return 1 + (int(retrier.get("MaxAttempts", 3)) if retrier else 0)
