"""The deployment (s.yaml, its Redis variant s.redis.yaml) and the function role's RAM policy, checked without a cloud.

Both deployments are validated against the fc3 component's own JSON Schema (vendored
in tests/schemas, see its README), after resolving the Serverless Devs expressions and
`extend` the way `s` would, and against the contracts the code relies on: the
environment variables `Settings` reads and docs/deploying.md documents, the handler module,
the four triggers, the state scope each deployment promises, and a role policy that
grants exactly what the function does and nothing more. Everything read here is inside
the repository: a fresh clone must pass.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ens_autoscaler.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
S_YAML = REPO / "s.yaml"
S_REDIS_YAML = REPO / "s.redis.yaml"
RAM_POLICY = REPO / "functions" / "ram-policy.json"
SCHEMA_PATH = REPO / "tests" / "schemas" / "fc3-props.schema.json"
DEPLOYING = REPO / "docs" / "deploying.md"

# What `${config('AccountID')}` resolves to here: any account id will do.
TEST_ACCOUNT_ID = "1234567890123456"

# fc3 triggerType -> the schema definition its triggerConfig must satisfy. The schema's
# own ITrigger accepts any object (its anyOf includes `IOtsConfig: {type: object}`), so
# without this a misspelt key of a trigger would pass unnoticed.
TRIGGER_CONFIG_DEFINITIONS = {
    "http": "IHttpTriggerConfig",
    "timer": "ITimerTriggerConfig",
    "mns_topic": "IMnsTriggerConfig",
    "eventbridge": "IEventBridge",
}

EXPECTED_ACTIONS = {
    "ens:RescaleDeviceService",
    "ens:DescribeDeviceService",
    "cms:DescribeMetricList",  # the daily forecast's history
    "mns:PublishMessage",
    "mns:SendMessage",
}

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.I)
ENV_REFERENCE = re.compile(r"\$\{env\('([A-Za-z_][A-Za-z0-9_]*)'\)\}")
ACCESS_KEY_ID = re.compile(r"LTAI[0-9A-Za-z]{12,}")


# --- resolving Serverless Devs expressions -------------------------------------------

_EXPR = re.compile(r"\$\{([^{}]+)\}")
_ENV_CALL = re.compile(r"env\(\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*(?:,\s*'([^']*)'\s*)?\)")


def _resolve_str(text: str, variables: dict[str, Any], depth: int = 0) -> str:
    """`${vars.x}`, `${env('X', 'default')}`, `${config('AccountID')}`, as `s` resolves them.

    `${env('X')}` without a default is a value only the deploying shell has (a secret):
    it stays a reference. The environment of the test run is never read, so the
    result does not depend on who runs the tests.
    """
    assert depth < 10, f"expressions nest too deep in {text!r}"

    def one(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("vars."):
            name = expr[len("vars."):]
            assert name in variables, f"{match.group(0)} names no entry of vars"
            return _resolve_str(str(variables[name]), variables, depth + 1)
        env = _ENV_CALL.fullmatch(expr)
        if env:
            return env.group(2) if env.group(2) is not None else match.group(0)
        if expr == "config('AccountID')":
            return TEST_ACCOUNT_ID
        raise AssertionError(f"s.yaml uses an expression this test cannot resolve: {match.group(0)}")

    return _EXPR.sub(one, text)


def _resolve(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _resolve_str(value, variables)
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    return value


def _merge(base: Any, override: Any) -> Any:
    """`extend` as `s` applies it (extend2, deep): mappings merge key by key, anything else replaces.

    Serverless Devs, "Yaml 继承": "数据在做合并的时候，直接覆盖，而不是合并操作" for lists
    (github.com/Serverless-Devs/Serverless-Devs/blob/master/docs/zh/extend.md).
    """
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override


def _load(path: Path) -> dict[str, Any]:
    """A deployment file as `s deploy -t <path>` sees it, `extend` applied."""
    assert path.is_file(), f"{path} is missing"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    parent = data.pop("extend", None)
    return _merge(_load(path.parent / parent), data) if parent else data


def _variables(raw: dict[str, Any]) -> dict[str, str]:
    declared = raw.get("vars") or {}
    assert isinstance(declared, dict) and declared, "the deployment declares no vars"
    return {k: _resolve_str(str(v), declared) for k, v in declared.items()}


def _fc3_resources(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {name: res for name, res in (raw.get("resources") or {}).items()
             if isinstance(res, dict) and res.get("component") == "fc3"}
    assert found, "the deployment has no resource with component: fc3"
    return found


def _props(raw: dict[str, Any]) -> dict[str, Any]:
    """The props of the function (the one fc3 resource), expressions resolved."""
    resources = _fc3_resources(raw)
    assert len(resources) == 1, f"expected one fc3 resource, found {sorted(resources)}"
    (resource,) = resources.values()
    return _resolve(resource["props"], _variables(raw))


# --- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return _load(S_YAML)


@pytest.fixture(scope="module")
def variables(raw: dict[str, Any]) -> dict[str, str]:
    return _variables(raw)


@pytest.fixture(scope="module")
def fc3_resources(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _fc3_resources(raw)


@pytest.fixture(scope="module")
def props(raw: dict[str, Any]) -> dict[str, Any]:
    return _props(raw)


@pytest.fixture(scope="module")
def redis_props() -> dict[str, Any]:
    return _props(_load(S_REDIS_YAML))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    assert SCHEMA_PATH.is_file(), f"{SCHEMA_PATH} is missing: the fc3 schema is vendored there"
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def triggers(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = props.get("triggers") or []
    names = [t.get("triggerName") for t in listed]
    assert len(names) == len(set(names)), f"trigger names repeat: {names}"
    return {t["triggerName"]: t for t in listed}


@pytest.fixture(scope="module")
def env_vars(props: dict[str, Any]) -> dict[str, str]:
    env = props.get("environmentVariables")
    assert isinstance(env, dict) and env, "props.environmentVariables is empty"
    return env


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    assert RAM_POLICY.is_file(), f"{RAM_POLICY} is missing"
    return json.loads(RAM_POLICY.read_text(encoding="utf-8"))


def _validator(schema: dict[str, Any], root: dict[str, Any] | None = None) -> jsonschema.Draft7Validator:
    # The fc3 schema declares draft-07; validate with exactly that draft.
    assert schema.get("$schema", (root or {}).get("$schema")) in (
        None, "http://json-schema.org/draft-07/schema#"), "the fc3 schema changed draft"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<props>'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))]


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy.get("Statement")
    assert isinstance(statements, list) and statements, "the policy has no Statement list"
    return statements


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# --- the file itself -----------------------------------------------------------------

def test_project_header(raw: dict[str, Any]) -> None:
    assert raw.get("edition") == "3.0.0"
    assert raw.get("name") == "ens-autoscaler"
    assert raw.get("access") == "default"


def test_vars_name_region_account_and_topics(variables: dict[str, str]) -> None:
    for name in ("region", "accountId", "devicesTopic", "signalTopic", "deadLetterQueue"):
        assert variables.get(name), f"vars.{name} is missing or empty"


@pytest.mark.parametrize("path", [S_YAML, S_REDIS_YAML], ids=lambda p: p.name)
def test_props_validate_against_fc3_schema(path: Path, schema: dict[str, Any]) -> None:
    raw = _load(path)
    validator = _validator(schema)
    for name, resource in _fc3_resources(raw).items():
        errors = _errors(validator, _resolve(resource.get("props"), _variables(raw)))
        assert not errors, f"{path.name} resources.{name}.props does not match the fc3 schema:\n" + "\n".join(errors)


def test_each_trigger_config_matches_its_own_type(triggers: dict[str, dict[str, Any]],
                                                  schema: dict[str, Any]) -> None:
    assert triggers, "no triggers"
    for trigger in triggers.values():
        kind = trigger.get("triggerType")
        definition = TRIGGER_CONFIG_DEFINITIONS.get(kind)
        assert definition, f"no check for trigger type {kind}: add it to TRIGGER_CONFIG_DEFINITIONS"
        sub = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
        errors = _errors(_validator(sub, schema), trigger.get("triggerConfig"))
        assert not errors, f"trigger {trigger.get('triggerName')} ({kind}):\n" + "\n".join(errors)


# --- the function --------------------------------------------------------------------

def test_function_shape(props: dict[str, Any]) -> None:
    assert props["functionName"] == "ens-autoscaler"
    assert props["runtime"] == "python3.12"
    assert props["memorySize"] == 128
    assert props["timeout"] == 60
    assert props.get("internetAccess") is not False, "the function must reach the public ENS/MNS endpoints"


def test_code_points_at_the_function_directory(props: dict[str, Any]) -> None:
    code = props["code"]
    assert isinstance(code, str), "code must be a local directory, not an OSS object"
    assert (REPO / code).resolve() == (REPO / "functions" / "autoscaler").resolve()


def _module_defines(module_dir: Path, handler: str) -> None:
    module, _, func = handler.rpartition(".")
    assert module and func, f"handler {handler!r} is not module.function"
    path = module_dir / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"handler {handler!r} points at {path}, which does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    defined |= {(a.asname or a.name) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert func in defined, f"{path} defines no top-level {func!r}"


def test_handler_points_at_a_function_that_exists(props: dict[str, Any]) -> None:
    _module_defines(REPO / props["code"], props["handler"])


def test_initializer_points_at_a_function_that_exists(props: dict[str, Any]) -> None:
    initializer = (props.get("instanceLifecycleConfig") or {}).get("initializer")
    if initializer is None:
        pytest.skip("no initializer configured")
    assert initializer.get("timeout"), "an initializer needs a timeout"
    _module_defines(REPO / props["code"], initializer["handler"])


def test_role_is_a_ram_role_arn_of_the_account(props: dict[str, Any]) -> None:
    assert re.fullmatch(rf"acs:ram::{TEST_ACCOUNT_ID}:role/[A-Za-z0-9.\-_]+", props["role"]), props["role"]


# --- environment variables ------------------------------------------------------------

# Variables the deployment may leave out, with why: the code's default is the right value.
OPTIONAL_IN_DEPLOYMENT = {"IDEMPOTENCY_TTL_SECONDS": "24 h outlasts every redelivery"}
CREDENTIALS = re.compile(r"ALIBABA_CLOUD_[A-Z_]+")  # FC injects them from the role


class _RecordingEnv(dict):
    """An empty environment that remembers every name asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default


def _settings_names() -> set[str]:
    """The names `Settings.from_env` reads: the contract as the code has it."""
    env = _RecordingEnv()
    Settings.from_env(env)
    return env.asked


def _documented_names() -> set[str]:
    """Names in the first column of docs/deploying.md's "Environment variables" table."""
    lines = DEPLOYING.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Environment variables")
    names: set[str] = set()
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def test_the_deploying_doc_documents_exactly_what_the_code_reads() -> None:
    read, documented = _settings_names(), _documented_names()
    # Guard the recorder: an empty read would make every check below vacuous.
    assert {"ENS_ENDPOINT", "MNS_TOPIC", "STATE_URL", "CALLBACK_TOKEN"} <= read, read
    assert not read - documented, f"Settings reads variables the deploying doc lacks: {sorted(read - documented)}"
    phantom = sorted(n for n in documented - read if not CREDENTIALS.fullmatch(n))
    assert not phantom, f"docs/deploying.md documents variables nothing reads: {phantom}"


# Empty in s.yaml unless the deploying shell has it; functions/check_deploy.py refuses a deploy without it.
CHECKED_AT_DEPLOY = ("CALLBACK_TOKEN",)


def test_every_contract_variable_is_set(env_vars: dict[str, str]) -> None:
    contract = _settings_names() - set(OPTIONAL_IN_DEPLOYMENT)
    missing = sorted(n for n in contract if not str(env_vars.get(n, "")).strip() and n not in CHECKED_AT_DEPLOY)
    assert not missing, f"environment variables Settings reads but s.yaml does not set: {missing}"


def test_contract_values(env_vars: dict[str, str], variables: dict[str, str]) -> None:
    assert env_vars["ENS_ENDPOINT"] == "ens.aliyuncs.com"
    assert env_vars["MNS_ENDPOINT"] == f"https://{TEST_ACCOUNT_ID}.mns.{variables['region']}.aliyuncs.com"
    assert env_vars["MNS_TOPIC"] == variables["devicesTopic"]
    assert env_vars["DRY_RUN"] == "false"
    policy_file = REPO / "functions" / "autoscaler" / env_vars["SCALING_POLICY"]
    assert policy_file.is_file(), f"SCALING_POLICY names {policy_file}, which does not exist"


def test_state_url_is_a_writable_absolute_path(env_vars: dict[str, str]) -> None:
    url = env_vars["STATE_URL"]
    if url.startswith("redis://") or url.startswith("rediss://"):
        return
    assert url.startswith("sqlite:///"), f"STATE_URL is neither sqlite:/// nor redis://: {url}"
    path = url[len("sqlite:///"):]
    # sqlite:///tmp/x.db is the RELATIVE path tmp/x.db, i.e. /code/tmp on FC: read-only.
    assert path.startswith("/tmp/"), f"STATE_URL must be an absolute path under /tmp (sqlite:////tmp/...): {url}"


def test_no_literal_secrets(env_vars: dict[str, str]) -> None:
    raw = _load(S_YAML)["resources"]["autoscaler"]["props"]["environmentVariables"]["CALLBACK_TOKEN"]
    assert raw == "${env('CALLBACK_TOKEN', '')}", \
        "CALLBACK_TOKEN must be exactly ${env('CALLBACK_TOKEN', '')}: no literal; empty, so that s info works"
    for name, value in env_vars.items():
        if SECRET_NAME.search(name) and name != "CALLBACK_TOKEN":
            assert ENV_REFERENCE.fullmatch(str(value)), \
                f"{name} looks like a secret: its value must be an ${{env('...')}} reference without default"
        assert not ACCESS_KEY_ID.search(str(value)), f"{name} holds what looks like an AccessKey id"
    # Credentials come from the function role (FC injects them); setting them would override it.
    forced = sorted(n for n in env_vars if n.startswith("ALIBABA_CLOUD_"))
    assert not forced, f"never set credentials in s.yaml, FC injects them from the role: {forced}"


def test_no_access_key_anywhere_in_s_yaml() -> None:
    assert not ACCESS_KEY_ID.search(S_YAML.read_text(encoding="utf-8")), "s.yaml contains an AccessKey id"


def test_dry_run_is_overridable_from_the_deploying_shell(fc3_resources: dict[str, dict[str, Any]]) -> None:
    """docs/deploying.md's smoke test deploys with DRY_RUN=true; by default the function orders."""
    (resource,) = fc3_resources.values()
    expr = _EXPR.fullmatch(str(resource["props"]["environmentVariables"]["DRY_RUN"]))
    call = expr and _ENV_CALL.fullmatch(expr.group(1).strip())
    assert call and call.groups() == ("DRY_RUN", "false"), "DRY_RUN must be ${env('DRY_RUN', 'false')}"


# --- where state lives: one instance at a time, or a shared store ---------------------------

def test_the_default_runs_one_instance_at_a_time(props: dict[str, Any], env_vars: dict[str, str]) -> None:
    """With a SQLite file per instance, only a single instance keeps concurrent duplicates apart."""
    assert Settings.from_env({"STATE_URL": env_vars["STATE_URL"]}).state_scope == "instance"
    assert props.get("concurrencyConfig") == {"reservedConcurrency": 1}, \
        "an instance-scoped store needs FC's function-level instance limit of 1"
    assert props.get("instanceConcurrency", 1) == 1, "one request per instance: built-in runtimes take no more"
    assert "vpcConfig" not in props, "the default needs no VPC"


def test_redis_variant_changes_only_the_state_store(props: dict[str, Any], redis_props: dict[str, Any]) -> None:
    changed = sorted(k for k in set(props) | set(redis_props) if props.get(k) != redis_props.get(k))
    assert changed == ["concurrencyConfig", "environmentVariables", "vpcConfig"], changed
    env, redis_env = props["environmentVariables"], redis_props["environmentVariables"]
    assert sorted(k for k in set(env) | set(redis_env) if env.get(k) != redis_env.get(k)) == ["STATE_URL"]


def test_redis_variant_takes_store_and_network_from_the_deploying_shell(redis_props: dict[str, Any]) -> None:
    assert redis_props["environmentVariables"]["STATE_URL"] == "${env('STATE_URL')}", \
        "STATE_URL holds the Redis password: exactly ${env('STATE_URL')}, no literal, no default"
    vpc = redis_props["vpcConfig"]
    assert isinstance(vpc, dict) and vpc["vSwitchIds"], "the variant needs a vpcConfig with a vSwitch"
    for value in (vpc["vpcId"], vpc["securityGroupId"], *vpc["vSwitchIds"]):
        assert ENV_REFERENCE.fullmatch(value), f"{value!r}: VPC ids come from the deploying shell"
    assert redis_props.get("internetAccess") is not False, "ENS and MNS are still reached on public endpoints"
    assert redis_props["concurrencyConfig"]["reservedConcurrency"] >= 1
    assert redis_props.get("instanceConcurrency", 1) == 1


REDIS_SHELL = {"STATE_URL": "redis://:pw@r-1.redis.rds.aliyuncs.com:6379/0", "ENS_AUTOSCALER_VPC_ID": "vpc-1",
               "ENS_AUTOSCALER_VSWITCH_ID": "vsw-1", "ENS_AUTOSCALER_SECURITY_GROUP_ID": "sg-1"}


def _redis_preflight(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The Redis variant's global pre-deploy action, run as `s` runs it: from the repository root."""
    steps = (_load(S_REDIS_YAML).get("actions") or {}).get("pre-deploy") or []
    (step,) = [s for s in steps if "check_redis_deploy.py" in str(s.get("run"))]
    command = str(step["run"]).split()
    assert command[0] == "python3", "the check runs with the deploying machine's python3"
    return subprocess.run([sys.executable, *command[1:]], cwd=REPO / step.get("path", "."),
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)


def test_redis_variant_deploys_from_a_complete_shell() -> None:
    done = _redis_preflight(REDIS_SHELL)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("change, named", [
    ({"STATE_URL": None}, "STATE_URL"),
    ({"STATE_URL": "sqlite:////tmp/ens-autoscaler.db"}, "STATE_URL"),
    ({"ENS_AUTOSCALER_VSWITCH_ID": None}, "ENS_AUTOSCALER_VSWITCH_ID"),
    ({"DRY_RUN": "maybe"}, "DRY_RUN"),
])
def test_redis_variant_refuses_an_incomplete_shell(change: dict[str, str | None], named: str) -> None:
    """Without its store the variant would run several instances on per-instance SQLite."""
    env = {k: v for k, v in {**REDIS_SHELL, **change}.items() if v is not None}
    done = _redis_preflight(env)
    assert done.returncode != 0
    assert named in done.stderr and "pw@" not in done.stderr, done.stderr


def _deploy_check(env: dict[str, str], tmp_path: Path, python312: str | None) -> subprocess.CompletedProcess[str]:
    """s.yaml's first pre-deploy action, run as `s` runs it, on a PATH with or without a python3.12
    (`python312`: the script it runs, e.g. a pyenv shim for a version not installed)."""
    steps = _load(S_YAML)["resources"]["autoscaler"]["actions"]["pre-deploy"]
    command = str(steps[0]["run"]).split()
    assert command[:2] == ["python3", "functions/check_deploy.py"], "the check must run before anything else"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if python312 is not None:
        (bin_dir / "python3.12").write_text(f"#!/bin/sh\n{python312}\n")
        (bin_dir / "python3.12").chmod(0o755)
    return subprocess.run([sys.executable, *command[1:]], cwd=REPO / steps[0].get("path", "."),
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env}, capture_output=True, text=True,
                          timeout=60)


def test_deploy_stops_first_without_python312_saying_how_to_get_it(tmp_path: Path) -> None:
    shim = "echo 'pyenv: python3.12: command not found' >&2; exit 127"
    for python312 in (None, shim):
        done = _deploy_check({"CALLBACK_TOKEN": "t"}, tmp_path, python312)
        assert done.returncode == 1
        assert "python3.12 is not on PATH or does not run" in done.stderr and "uv python install 3.12" in done.stderr
        assert "nothing was installed or deployed" in done.stderr
    assert _deploy_check({"CALLBACK_TOKEN": "t"}, tmp_path, "exit 0").returncode == 0


def test_deploy_stops_without_a_callback_token_that_other_s_commands_do_without(tmp_path: Path) -> None:
    done = _deploy_check({}, tmp_path, "exit 0")
    assert done.returncode == 1 and "CALLBACK_TOKEN is not set" in done.stderr


# --- dependencies ------------------------------------------------------------------------

def test_dependencies_are_installed_where_pythonpath_points(fc3_resources: dict[str, dict[str, Any]],
                                                            env_vars: dict[str, str]) -> None:
    (resource,) = fc3_resources.values()
    steps = (resource.get("actions") or {}).get("pre-deploy") or []
    runs = [" ".join(str(s.get("run", "")).split()) for s in steps]
    install = [r for r in runs if "pip install" in r]
    assert install, "no pre-deploy step installs requirements.txt"
    cmd = install[0]
    assert "-r requirements.txt" in cmd and (REPO / "requirements.txt").is_file()
    assert "--python-version 3.12" in cmd and "--only-binary=:all:" in cmd, \
        "wheels must be fetched for the FC runtime (CPython 3.12, linux x86_64), not the deploying machine"
    target = re.search(r"--target\s+(\S+)", cmd)
    assert target, "pip must install into a target directory inside the code package"
    code_dir = (REPO / "functions" / "autoscaler").resolve()
    target_dir = (REPO / target.group(1)).resolve()
    assert code_dir in target_dir.parents, f"{target_dir} is not inside the code package {code_dir}"
    assert env_vars.get("PYTHONPATH") == "/code/" + target_dir.relative_to(code_dir).as_posix(), \
        "PYTHONPATH must point at the installed dependencies (/code is the code package on FC)"


# --- triggers ----------------------------------------------------------------------------

def test_the_triggers(triggers: dict[str, dict[str, Any]]) -> None:
    assert {name: t["triggerType"] for name, t in triggers.items()} == {
        "cms-callback": "http", "mns-signals": "mns_topic", "evening-peak": "timer",
        "readiness": "timer", "forecast": "timer", "cms-eventbridge": "eventbridge"}


def test_the_forecast_timer_runs_daily_with_the_sample_payload(triggers: dict[str, dict[str, Any]]) -> None:
    config = triggers["forecast"]["triggerConfig"]
    sample = json.loads((REPO / "events" / "timer-forecast.json").read_text())
    assert config["enable"] is True and config["payload"] == sample["payload"]
    fields = re.sub(r"^CRON_TZ=\S+\s+", "", config["cronExpression"]).split()
    assert len(fields) == 6 and fields[3:] == ["*", "*", "*"], config["cronExpression"]  # once a day


def test_the_readiness_timer_runs_every_minute_with_the_sample_payload(triggers: dict[str, dict[str, Any]]) -> None:
    config = triggers["readiness"]["triggerConfig"]
    sample = json.loads((REPO / "events" / "timer-readiness.json").read_text())
    assert config["enable"] is True and config["payload"] == sample["payload"]
    assert config["cronExpression"] == "@every 1m"


def test_http_trigger_takes_cloudmonitor_posts(triggers: dict[str, dict[str, Any]]) -> None:
    config = triggers["cms-callback"]["triggerConfig"]
    assert config["authType"] == "anonymous", "CloudMonitor cannot sign: the function checks ?token="
    assert config["methods"] == ["POST"]
    assert config.get("disableURLInternet") is not True, "CloudMonitor calls the public URL"


def test_timer_is_deployed_disabled(triggers: dict[str, dict[str, Any]]) -> None:
    config = triggers["evening-peak"]["triggerConfig"]
    assert config["enable"] is False
    assert config["payload"] == "evening-peak"
    fields = re.sub(r"^CRON_TZ=\S+\s+", "", config["cronExpression"]).split()
    assert len(fields) == 6, f"FC cron has six fields (seconds first): {config['cronExpression']}"


def test_timer_payload_names_a_policy_profile(triggers: dict[str, dict[str, Any]],
                                              env_vars: dict[str, str]) -> None:
    policy_file = REPO / "functions" / "autoscaler" / env_vars["SCALING_POLICY"]
    profiles = (yaml.safe_load(policy_file.read_text(encoding="utf-8")) or {}).get("profiles") or {}
    payload = triggers["evening-peak"]["triggerConfig"]["payload"]
    assert payload in profiles, f"timer payload {payload!r} is no profile of {policy_file.name}: {sorted(profiles)}"


def test_mns_trigger(triggers: dict[str, dict[str, Any]], variables: dict[str, str],
                     env_vars: dict[str, str]) -> None:
    trigger = triggers["mns-signals"]
    config = trigger["triggerConfig"]
    assert config["notifyContentFormat"] == "JSON"
    assert config["notifyStrategy"] == "BACKOFF_RETRY"
    match = re.fullmatch(rf"acs:mns:{variables['region']}:{TEST_ACCOUNT_ID}:/topics/([^/]+)", trigger["sourceArn"])
    assert match, f"sourceArn is not a topic of this region and account: {trigger['sourceArn']}"
    assert match.group(1) != env_vars["MNS_TOPIC"], \
        "the trigger subscribes to the topic the function publishes to: every scale-out would re-invoke it"
    assert re.fullmatch(rf"acs:ram::{TEST_ACCOUNT_ID}:role/\S+", trigger.get("invocationRole", "")), \
        "MNS needs an invocation role to call the function"


def test_eventbridge_trigger_matches_cloudmonitor(triggers: dict[str, dict[str, Any]]) -> None:
    config = triggers["cms-eventbridge"]["triggerConfig"]
    pattern = json.loads(config["eventRuleFilterPattern"])
    # The type alone: the alarm's `source` was never seen on a real event (docs/deploying.md).
    assert pattern == {"type": ["cms:CloudMonitor:AlertWebHook"]}
    assert config["eventSourceConfig"]["eventSourceType"] == "Default"
    assert config["triggerEnable"] is True
    assert config["eventSinkConfig"]["deliveryOption"].get("eventSchema", "CloudEvents") == "CloudEvents", \
        "the EventBridge decoder reads CloudEvents"


def test_async_invocations_retry_then_dead_letter(props: dict[str, Any], variables: dict[str, str]) -> None:
    config = props["asyncInvokeConfig"]
    assert config["maxAsyncRetryAttempts"] == 3
    assert 60 <= config["maxAsyncEventAgeInSeconds"] <= 86400
    destination = config["destinationConfig"]["onFailure"]["destination"]
    assert re.fullmatch(rf"acs:mns:{variables['region']}:{TEST_ACCOUNT_ID}:/queues/[^/]+/messages", destination), \
        f"onFailure must be an MNS queue of this region and account: {destination}"


# --- the RAM policy ---------------------------------------------------------------------

def test_policy_is_allow_only_version_1(policy: dict[str, Any]) -> None:
    assert policy.get("Version") == "1"
    for statement in _statements(policy):
        assert statement.get("Effect") == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement


def test_policy_grants_exactly_the_needed_actions(policy: dict[str, Any]) -> None:
    granted = [a for s in _statements(policy) for a in _as_list(s["Action"])]
    assert not [a for a in granted if "*" in a], f"wildcard actions: {granted}"
    assert sorted(granted) == sorted(EXPECTED_ACTIONS), f"granted {sorted(granted)}"


def test_policy_resources(policy: dict[str, Any]) -> None:
    for statement in _statements(policy):
        actions, resources = _as_list(statement["Action"]), _as_list(statement["Resource"])
        if all(a.startswith(("ens:", "cms:")) for a in actions):
            # Neither the ENS actions nor CloudMonitor's DescribeMetricList supports resource-level
            # permission ("All Resources" in their RAM authorization tables).
            assert resources == ["*"]
            continue
        assert len(actions) == 1 and len(resources) == 1, "one MNS action, one resource per statement"
        (action,), (resource,) = actions, resources
        assert "*" not in resource, f"{action} must name its resource exactly: {resource}"
        if action == "mns:PublishMessage":
            assert re.fullmatch(r"acs:mns:\$\{region\}:\$\{accountId\}:/topics/[^/*]+/messages", resource), resource
        elif action == "mns:SendMessage":
            assert re.fullmatch(r"acs:mns:\$\{region\}:\$\{accountId\}:/queues/[^/*]+/messages", resource), resource
        else:
            pytest.fail(f"unexpected statement for {actions}")


def test_policy_placeholders_match_the_deployment(policy: dict[str, Any], variables: dict[str, str],
                                                  env_vars: dict[str, str], props: dict[str, Any]) -> None:
    """Filled in with s.yaml's vars, the policy names the very topic and queue deployed."""
    text = json.dumps(policy)
    placeholders = set(re.findall(r"\$\{([A-Za-z]+)\}", text))
    assert placeholders and placeholders <= set(variables), \
        f"placeholders {sorted(placeholders - set(variables))} are not vars of s.yaml"
    filled = json.loads(re.sub(r"\$\{([A-Za-z]+)\}", lambda m: variables[m.group(1)], text))
    by_action = {a: _as_list(s["Resource"]) for s in _statements(filled) for a in _as_list(s["Action"])}
    topic_arn = f"acs:mns:{variables['region']}:{TEST_ACCOUNT_ID}:/topics/{env_vars['MNS_TOPIC']}/messages"
    assert by_action["mns:PublishMessage"] == [topic_arn]
    assert by_action["mns:SendMessage"] == [props["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]]
