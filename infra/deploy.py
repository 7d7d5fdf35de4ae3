"""`make deploy`: check the Lambda zip, upload it, and create or update the CloudFormation stack.

Uses the normal AWS credential chain (and AWS_ENDPOINT_URL, so it also deploys into moto).
Parameters come from the environment (see the Makefile's deploy target and the README):
  BUCKET             S3 bucket for the zip (default autostop-artifacts-ACCOUNT-REGION, created
                     when missing)
  STACK              stack name (default autostop)
  PARAMS             extra template parameters, "Key=Value Key=Value" (e.g. VpcId=vpc-1
                     SubnetIds=subnet-a,subnet-b, or ExistingListenerArns=arn1,arn2)
  ARCH               arm64 | x86-64: the stack's architecture (default: the existing stack's,
                     else the zip's); the zip's bootstrap must be built for it
  ZIP                the zip (default target/lambda/autostop/bootstrap.zip, what `make build` makes)
  SYNC               1 (default): invoke the deployed function with {"autostop": "sync"} so its own
                     role creates or repairs the standing listener rules now; 0 to skip

Before anything is uploaded it refuses a zip whose bootstrap is built for another architecture
than the stack's, a zip without autostop.toml (the function reads /var/task/autostop.toml), and
a config that does not validate (`autostop validate`, with the environment the function gets).
"""
import json
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import zipfile

import boto3
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ELF e_machine (offset 18, little-endian) -> Lambda's architecture name.
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
ARCHES = {"x86-64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}


def main():
    stack = os.environ.get("STACK") or "autostop"
    zip_path = os.environ.get("ZIP") or os.path.join(ROOT, "target", "lambda", "autostop", "bootstrap.zip")
    if not os.path.exists(zip_path):
        sys.exit(f"deploy: {zip_path} missing; run `make build` first")
    params = parse_params(os.environ.get("PARAMS", ""))
    groups = listeners_by_load_balancer(params.get("ExistingListenerArns", ""))
    if len(groups) > MAX_LOAD_BALANCERS:
        sys.exit(f"deploy: ExistingListenerArns span {len(groups)} load balancers; the template serves at most "
                 f"{MAX_LOAD_BALANCERS}: deploy one stack per group of ALBs")
    cf = boto3.client("cloudformation")
    existing = existing_parameters(cf, stack)
    built = check_zip(zip_path)
    arch = stack_architecture(os.environ.get("ARCH", ""), params, existing, built)
    if built != arch:
        sys.exit(f"deploy: {zip_path} holds a bootstrap built for {built}, but the stack runs {arch}: "
                 f"run `make build ARCH={'x86-64' if arch == 'x86_64' else 'arm64'}`, or deploy with "
                 f"ARCH={'x86-64' if built == 'x86_64' else 'arm64'}. Nothing was uploaded")
    validate_config(zip_path, built, function_environment(params, existing))

    data = open(zip_path, "rb").read()
    bucket = artifact_bucket(os.environ.get("BUCKET", ""))
    key = f"autostop/bootstrap-{hashlib.sha256(data).hexdigest()[:16]}.zip"  # new key = new code
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    print(f"deploy: uploaded s3://{bucket}/{key} ({len(data)} bytes)")

    params.update({"CodeS3Bucket": bucket, "CodeS3Key": key, "Architecture": arch})
    if groups:
        params["ExistingLoadBalancerCount"] = str(len(groups))
    outputs = create_or_update(cf, stack, params, existing is not None)
    print_listener_commands(groups, outputs.get("LambdaTargetGroupArns", "").split(","))
    if os.environ.get("SYNC", "1") != "0" and "FunctionName" in outputs:
        sync(outputs["FunctionName"])


def parse_params(text):
    params = {}
    for pair in text.split():
        k, _, v = pair.partition("=")
        if not v:
            sys.exit(f"deploy: PARAMS entry `{pair}` is not Key=Value")
        params[k] = v
    return params


def existing_parameters(cf, stack):
    """The stack's current parameters, or None when there is no such stack."""
    try:
        found = cf.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError:
        return None
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])}


def check_zip(zip_path):
    """The architecture of the zip's bootstrap; exits when it has none, or no autostop.toml."""
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        if "bootstrap" not in names:
            sys.exit(f"deploy: {zip_path} has no `bootstrap`: build it with `make build`. Nothing was uploaded")
        if "autostop.toml" not in names:
            sys.exit(f"deploy: {zip_path} has no autostop.toml, and the function reads its config from "
                     "/var/task/autostop.toml: write autostop.toml at the top of the repository, run "
                     "`make build`, and deploy again. Nothing was uploaded")
        head = z.open("bootstrap").read(20)
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") not in ELF_MACHINES:
        sys.exit(f"deploy: the bootstrap in {zip_path} is not a Linux x86-64 or arm64 program. Nothing was uploaded")
    return ELF_MACHINES[int.from_bytes(head[18:20], "little")]


def stack_architecture(asked, params, existing, built):
    """ARCH (or PARAMS Architecture=) when given, else the existing stack's, else the zip's."""
    given = asked or params.get("Architecture", "")
    if given:
        if given not in ARCHES:
            sys.exit(f"deploy: ARCH must be arm64 or x86-64, not `{given}`")
        return ARCHES[given]
    return (existing or {}).get("Architecture") or built


def function_environment(params, existing):
    """What the template gives the function: its listeners (or, for a new ALB, that it has one)
    and its table."""
    previous = existing or {}
    listeners = params.get("ExistingListenerArns", previous.get("ExistingListenerArns", ""))
    env = {"AUTOSTOP_STATE_TABLE": params.get("StateTableName", previous.get("StateTableName") or "autostop-state")}
    if listeners:
        env["AUTOSTOP_LISTENER_ARNS"] = listeners
    else:
        # The new ALB's ARN is known only once the stack exists; the function looks up its listeners.
        env["AUTOSTOP_LOAD_BALANCER_ARN"] = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/new/0"
    return env


def validate_config(zip_path, built, env):
    """`autostop validate` on the zip's config, by the zip's own bootstrap when it runs on this
    machine, else by a build of the CLI for it; exits when the config is refused."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp, members=["bootstrap", "autostop.toml"])
        config = os.path.join(tmp, "autostop.toml")
        host = ARCHES.get(platform.machine())
        if platform.system() == "Linux" and host == built:
            os.chmod(os.path.join(tmp, "bootstrap"), 0o755)
            command = [os.path.join(tmp, "bootstrap")]
        else:
            print(f"deploy: the zip's {built} bootstrap cannot run here; validating with `cargo run` (a host build)")
            command = ["cargo", "run", "--quiet", "--bin", "autostop", "--"]
        child = {k: v for k, v in os.environ.items() if not k.startswith("AUTOSTOP_") and k != "AWS_LAMBDA_RUNTIME_API"}
        run = subprocess.run(command + ["--config", config, "validate"], cwd=ROOT, env=dict(child, **env),
                             capture_output=True, text=True)
    said = (run.stdout + run.stderr).replace(config, "autostop.toml (in the zip)").strip()
    if run.returncode != 0:
        sys.exit(f"deploy: the config in the zip does not validate:\n{said}\n"
                 "Fix autostop.toml, run `make build`, and deploy again. Nothing was uploaded")
    print(f"deploy: {run.stdout.strip()}")


def artifact_bucket(named):
    """BUCKET, which must exist; else autostop-artifacts-ACCOUNT-REGION, created when missing."""
    s3 = boto3.client("s3")
    if named:
        try:
            s3.head_bucket(Bucket=named)
        except ClientError as e:
            sys.exit(f"deploy: bucket {named} cannot be used ({e.response['Error'].get('Code')}): create it "
                     f"(`aws s3 mb s3://{named}`), or leave BUCKET unset for a bucket of autostop's own")
        return named
    account = boto3.client("sts").get_caller_identity()["Account"]
    region = s3.meta.region_name
    bucket = f"autostop-artifacts-{account}-{region}"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **where)
        print(f"deploy: created bucket {bucket} for the Lambda zips")
    return bucket


def create_or_update(cf, stack, params, exists):
    """The stack with these parameters; prints and returns its outputs."""
    template = open(os.path.join(ROOT, "infra", "autostop.yaml")).read()
    args = dict(StackName=stack, TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    try:
        if exists:
            cf.update_stack(**args)
            cf.get_waiter("stack_update_complete").wait(StackName=stack)
        else:
            cf.create_stack(**args)
            cf.get_waiter("stack_create_complete").wait(StackName=stack)
    except ClientError as e:
        if "No updates are to be performed" not in str(e):
            raise
    out = cf.describe_stacks(StackName=stack)["Stacks"][0]
    print(f"deploy: stack {stack} {out['StackStatus']}")
    for o in out.get("Outputs", []):
        print(f"  {o['OutputKey']}: {o['OutputValue']}")
    return {o["OutputKey"]: o["OutputValue"] for o in out.get("Outputs", [])}


MAX_LOAD_BALANCERS = 4


def listeners_by_load_balancer(arns):
    """Listener ARNs grouped by their load balancer, in the order each first appears.

    `arn:...:listener/app/NAME/LBID/LISTENERID` is a listener of `arn:...:loadbalancer/app/NAME/LBID`
    (Elastic Load Balancing ARN formats, Service Authorization Reference)."""
    groups = {}
    for arn in [a.strip() for a in arns.split(",") if a.strip()]:
        head, _, resource = arn.partition(":listener/")
        parts = resource.split("/")
        if not head or len(parts) != 4:
            sys.exit(f"deploy: `{arn}` in ExistingListenerArns is not an ALB listener ARN "
                     "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/LB_ID/LISTENER_ID)")
        groups.setdefault(f"{head}:loadbalancer/{'/'.join(parts[:3])}", []).append(arn)
    return groups


def print_listener_commands(groups, lambda_tgs):
    """Each ALB has its own Lambda target group (a target group serves one load balancer): the
    command that makes it the default action of each of that ALB's listeners."""
    for (lb, listeners), tg in zip(groups.items(), lambda_tgs):
        print(f"deploy: load balancer {lb}: make autostop the default action of its listeners (once each):")
        for listener in listeners:
            print(f"  aws elbv2 modify-listener --listener-arn {listener} "
                  f"--default-actions Type=forward,TargetGroupArn={tg}")


def sync(function):
    """The standing listener rules for the config just deployed, made by the function's own role."""
    payload = json.dumps({"autostop": "sync"}).encode()
    hint = (f"the next idle check repairs them, or run: aws lambda invoke --function-name {function} "
            f"--cli-binary-format raw-in-base64-out --payload '{payload.decode()}' /dev/stdout")
    try:
        resp = boto3.client("lambda").invoke(FunctionName=function, Payload=payload)
    except ClientError as e:
        sys.exit(f"deploy: the stack is deployed, but the sync of listener rules could not run ({e}); {hint}")
    body = resp["Payload"].read().decode(errors="replace")
    if resp.get("FunctionError"):
        sys.exit(f"deploy: the stack is deployed, but the sync of listener rules failed: {body}; {hint}")
    print(f"deploy: standing listener rules synced: {body}")


if __name__ == "__main__":
    main()
