"""The deploy path as a new user runs it: the zip cargo-lambda built (`make package`) goes through
`make deploy` (infra/deploy.py) into moto's S3 and CloudFormation. Before that, the broken zips
a first deploy can hold (no config, a config that does not validate, the other architecture's
bootstrap) are refused with nothing uploaded.

Run by `make test` inside tests/with-moto.sh. Prints one line per check and a closing
'N passed, N failed' line; exits non-zero on any failure.
"""
import hashlib
import os
import platform
import subprocess
import sys
import zipfile

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT = os.path.join(ROOT, "target", "lambda", "autostop", "bootstrap.zip")
WORK = os.path.join(ROOT, "target", "tmp", "deploy-test")
ZIP = os.path.join(WORK, "bootstrap.zip")
CONFIG = """
[[rules]]
name = "api"
hosts = ["api.dev.example.com"]
target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"
ec2 = { instance_ids = ["i-0123456789abcdef0"] }
"""
results = []


def with_config(name, text):
    """The cargo-lambda zip with `text` as its autostop.toml, as `make build` packs one."""
    path = os.path.join(WORK, name)
    with zipfile.ZipFile(BUILT) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename != "autostop.toml":
                out.writestr(item, src.read(item.filename))
        out.writestr("autostop.toml", text)
    return path


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


def deploy(env):
    """`make deploy` with these variables; returns (exit code, output)."""
    run = subprocess.run(["make", "--no-print-directory", "deploy"], cwd=ROOT, env=dict(os.environ, **env),
                         capture_output=True, text=True, timeout=600)
    return run.returncode, run.stdout + run.stderr


def main():
    assert os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1"), "run through tests/with-moto.sh"
    s3, cf, ec2, lam = (boto3.client(n) for n in ("s3", "cloudformation", "ec2", "lambda"))

    with zipfile.ZipFile(BUILT) as z:
        names = z.namelist()
        bootstrap = z.getinfo("bootstrap") if "bootstrap" in names else None
    check("cargo-lambda built a zip with the bootstrap binary", bootstrap is not None and bootstrap.file_size > 1_000_000,
          names)
    os.makedirs(WORK, exist_ok=True)
    with_config("bootstrap.zip", CONFIG)

    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    env = {"STACK": "autostop-deploy-test", "SYNC": "0", "ZIP": ZIP,
           "PARAMS": f"VpcId={vpc} SubnetIds={','.join(subnets)} StateTableName=autostop-deploy-test"}
    refusals(dict(env, STACK="autostop-refused"), s3, cf)

    code, out = deploy(env)
    check("make deploy exits 0", code == 0, out)
    default_bucket = "autostop-artifacts-123456789012-us-east-1"
    check("without BUCKET it creates a bucket of its own and says so",
          f"created bucket {default_bucket}" in out and s3.head_bucket(Bucket=default_bucket), out)
    check("it says the config in the zip validated", "deploy: config ok: 1 rules" in out, out)
    stack = cf.describe_stacks(StackName="autostop-deploy-test")["Stacks"][0]
    check("stack CREATE_COMPLETE", stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason"))
    env["BUCKET"] = default_bucket

    digest = hashlib.sha256(open(ZIP, "rb").read()).hexdigest()[:16]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    check("the stack's code is the zip just built (content-addressed key)",
          params.get("CodeS3Key") == f"autostop/bootstrap-{digest}.zip", params)
    uploaded = s3.get_object(Bucket=default_bucket, Key=params.get("CodeS3Key", "-"))["Body"].read()
    check("the uploaded object is that zip, byte for byte", uploaded == open(ZIP, "rb").read())
    fn = [r for r in cf.describe_stack_resources(StackName="autostop-deploy-test")["StackResources"]
          if r.get("LogicalResourceId") == "Function"][0]["PhysicalResourceId"]
    config = lam.get_function(FunctionName=fn)["Configuration"]
    check("the function runs the bootstrap on provided.al2023",
          config["Runtime"] == "provided.al2023" and config["Handler"] == "bootstrap", config)

    # With the sync (the default), make deploy invokes the function. moto cannot run a function
    # without Docker, so the invoke fails here: the deploy must say so and what to run.
    code, out = deploy(dict(env, SYNC="1"))
    check("a sync that cannot run fails the deploy and says what to run",
          code != 0 and "sync" in out and "aws lambda invoke" in out and '{"autostop": "sync"}' in out, out)

    # Listeners of two existing ALBs: each ALB gets its own Lambda target group, and the deploy
    # prints, per listener, the command that makes its ALB's group the default action.
    elb = boto3.client("elbv2")
    listeners = []
    for name in ("deploy-alb-a", "deploy-alb-b"):
        lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name=f"{name}-app", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
        listeners.append(elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]["ListenerArn"])
    two = {"ZIP": ZIP, "STACK": "autostop-two-albs", "SYNC": "0",
           "PARAMS": f"ExistingListenerArns={','.join(listeners)} StateTableName=autostop-two-albs"}
    code, out = deploy(two)
    commands = [line.split() for line in out.splitlines() if line.startswith("  aws elbv2 modify-listener")]
    targets = {c[c.index("--listener-arn") + 1]: c[-1].split("TargetGroupArn=")[1] for c in commands}
    check("two ALBs: one modify-listener command per listener, each with its ALB's own Lambda group",
          code == 0 and sorted(targets) == sorted(listeners) and len(set(targets.values())) == 2, out)
    code, out = deploy(dict(two, STACK="autostop-bad-arn", PARAMS="ExistingListenerArns=arn:aws:nope"))
    check("a listener ARN that is not one is refused before anything is deployed",
          code != 0 and "not an ALB listener ARN" in out, out)


def refusals(env, s3, cf):
    """Broken zips and configs are refused before anything is uploaded or deployed."""
    def refused(name, extra, *said):
        code, out = deploy(dict(env, **extra))
        nothing = not any(b["Name"].startswith("autostop-artifacts") for b in s3.list_buckets()["Buckets"])
        check(name, code != 0 and all(w in out for w in said) and "Nothing was uploaded" in out and nothing, out)

    refused("a zip without autostop.toml is refused", {"ZIP": BUILT}, "has no autostop.toml")
    bad = with_config("bad.zip", CONFIG.replace('name = "api"', 'name = "api"\nidle = "soon"'))
    refused("a config that does not validate is refused with validate's words", {"ZIP": bad},
            "does not validate", "rules[0] (api).idle")
    host = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    other = "arm64" if host == "x86_64" else "x86-64"
    refused("a bootstrap of the other architecture is refused", {"ARCH": other},
            f"built for {host}, but the stack runs {other.replace('-', '_')}")
    stacks = [s["StackName"] for s in cf.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
    check("no stack was created by a refused deploy", env["STACK"] not in stacks, stacks)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash is a failure with its reason, never a silent pass
        check("deploy test ran to the end", False, repr(e))
    passed, failed = results.count(True), results.count(False)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
