"""`make deploy`: upload the Lambda zip and create or update the CloudFormation stack.

Uses the normal AWS credential chain (and AWS_ENDPOINT_URL, so it also deploys into moto).
Parameters come from the environment (see the Makefile's deploy target and the README):
  BUCKET (required)  S3 bucket for the zip
  STACK              stack name (default autostop)
  PARAMS             extra template parameters, "Key=Value Key=Value" (e.g. VpcId=vpc-1
                     SubnetIds=subnet-a,subnet-b, or ExistingListenerArns=arn1,arn2)
  ARCH               arm64 | x86-64, as built
  SYNC               1 (default): invoke the deployed function with {"autostop": "sync"} so its own
                     role creates or repairs the standing listener rules now; 0 to skip
"""
import json
import hashlib
import os
import sys

import boto3
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    bucket = os.environ.get("BUCKET") or sys.exit("deploy: set BUCKET=<an S3 bucket for the Lambda zip>")
    stack = os.environ.get("STACK") or "autostop"
    arch = {"x86-64": "x86_64", "x86_64": "x86_64", "arm64": "arm64"}.get(os.environ.get("ARCH", "arm64"))
    if arch is None:
        sys.exit("deploy: ARCH must be arm64 or x86-64")
    zip_path = os.path.join(ROOT, "target", "lambda", "autostop", "bootstrap.zip")
    if not os.path.exists(zip_path):
        sys.exit(f"deploy: {zip_path} missing; run `make build` first")
    data = open(zip_path, "rb").read()
    key = f"autostop/bootstrap-{hashlib.sha256(data).hexdigest()[:16]}.zip"  # new key = new code
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    print(f"deploy: uploaded s3://{bucket}/{key} ({len(data)} bytes)")

    params = {"CodeS3Bucket": bucket, "CodeS3Key": key, "Architecture": arch}
    for pair in os.environ.get("PARAMS", "").split():
        k, _, v = pair.partition("=")
        if not v:
            sys.exit(f"deploy: PARAMS entry `{pair}` is not Key=Value")
        params[k] = v
    groups = listeners_by_load_balancer(params.get("ExistingListenerArns", ""))
    if len(groups) > MAX_LOAD_BALANCERS:
        sys.exit(f"deploy: ExistingListenerArns span {len(groups)} load balancers; the template serves at most "
                 f"{MAX_LOAD_BALANCERS}: deploy one stack per group of ALBs")
    if groups:
        params["ExistingLoadBalancerCount"] = str(len(groups))
    cf = boto3.client("cloudformation")
    template = open(os.path.join(ROOT, "infra", "autostop.yaml")).read()
    args = dict(StackName=stack, TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    try:
        cf.describe_stacks(StackName=stack)
        exists = True
    except ClientError:
        exists = False
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
    outputs = {o["OutputKey"]: o["OutputValue"] for o in out.get("Outputs", [])}
    print_listener_commands(groups, outputs.get("LambdaTargetGroupArns", "").split(","))
    if os.environ.get("SYNC", "1") != "0" and "FunctionName" in outputs:
        sync(outputs["FunctionName"])


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
