"""Deploys infra/autostop.yaml into moto's CloudFormation and checks what it created.

Run by `make test` inside tests/with-moto.sh (AWS_ENDPOINT_URL points at moto). Prints one line
per check and a closing 'N passed, N failed' line; exits non-zero on any failure.
"""
import ast
import io

import json
import os
import sys
import zipfile

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


def policy(doc):
    """A policy document as boto3 gives it: a dict, JSON text, or (moto, from CloudFormation) a
    Python literal."""
    if not isinstance(doc, str):
        return doc
    try:
        return json.loads(doc)
    except ValueError:
        return ast.literal_eval(doc)


def main():
    assert os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1"), "run through tests/with-moto.sh"
    s3, cf, ec2 = boto3.client("s3"), boto3.client("cloudformation"), boto3.client("ec2")
    lam, elb, ddb, events, iam = (boto3.client(n) for n in ("lambda", "elbv2", "dynamodb", "events", "iam"))

    # The package as `make build` makes it: bootstrap plus the config.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
        z.writestr("autostop.toml", "[[rules]]\nname = \"api\"\n")
    s3.create_bucket(Bucket="autostop-artifacts")
    s3.put_object(Bucket="autostop-artifacts", Key="autostop/bootstrap.zip", Body=buf.getvalue())

    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    template = open(os.path.join(ROOT, "infra", "autostop.yaml")).read()

    # 1. A new ALB.
    cf.create_stack(
        StackName="autostop",
        TemplateBody=template,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "CodeS3Bucket", "ParameterValue": "autostop-artifacts"},
            {"ParameterKey": "VpcId", "ParameterValue": vpc},
            {"ParameterKey": "SubnetIds", "ParameterValue": ",".join(subnets)},
            {"ParameterKey": "Architecture", "ParameterValue": "x86_64"},
            {"ParameterKey": "WildcardDomain", "ParameterValue": "dev.example.com"},
        ],
    )
    stack = cf.describe_stacks(StackName="autostop")["Stacks"][0]
    check("stack CREATE_COMPLETE", stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason"))
    raw = cf.describe_stack_resources(StackName="autostop")["StackResources"]
    # moto 5.2.1 lists one extra entry with neither logical id nor type; it is not ours.
    resources = {r["LogicalResourceId"]: r for r in raw if "LogicalResourceId" in r}
    expected = ["StateTable", "LogGroup", "Role", "ListenerPolicy", "Function", "ElbInvokePermission",
                "LambdaTargetGroup", "AlbSecurityGroup", "Alb", "HttpListener", "IdleCheckSchedule",
                "EventsInvokePermission"]
    for logical in expected:
        status = resources.get(logical, {}).get("ResourceStatus")
        check(f"{logical} created", status == "CREATE_COMPLETE", status)
    check("no HTTPS listener without a certificate", "HttpsListener" not in resources, list(resources))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    table = ddb.describe_table(TableName="autostop-state")["Table"]
    check("state table on demand, key `rule`",
          table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
          and table["KeySchema"] == [{"AttributeName": "rule", "KeyType": "HASH"}], table)

    fn = lam.get_function(FunctionName=resources["Function"]["PhysicalResourceId"])["Configuration"]
    env = fn.get("Environment", {}).get("Variables", {})
    check("function runtime and architecture",
          fn["Runtime"] == "provided.al2023" and fn.get("Architectures") == ["x86_64"] and fn["Handler"] == "bootstrap", fn)
    check("function timeout above hold", int(fn["Timeout"]) >= 30, fn["Timeout"])
    alb_arn = resources["Alb"]["PhysicalResourceId"]
    check("function told its ALB and table",
          env.get("AUTOSTOP_LOAD_BALANCER_ARN") == alb_arn and env.get("AUTOSTOP_STATE_TABLE") == "autostop-state", env)
    check("no OIDC client secret without OidcClientSecretArn", env.get("AUTOSTOP_OIDC_CLIENT_SECRET") == "", env)
    # moto's CloudFormation does not resolve Secrets Manager dynamic references; AWS does at deploy.
    check("the OIDC client secret comes from Secrets Manager at deploy",
          "{{resolve:secretsmanager:${OidcClientSecretArn}:SecretString}}" in template, "")

    tg_arn = resources["LambdaTargetGroup"]["PhysicalResourceId"]
    tg = elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
    check("lambda target group", tg["TargetType"] == "lambda", tg)
    # moto's CloudFormation does not apply TargetGroupAttributes (it reports "false"); AWS does.
    # So the declaration is checked in the template itself.
    tg_block = template.split("  LambdaTargetGroup:")[1].split("\n  Alb")[0]
    check("multi-value headers declared on the Lambda target group",
          "Key: lambda.multi_value_headers.enabled" in tg_block and 'Value: "true"' in tg_block, tg_block)
    concurrency = lam.get_function_concurrency(FunctionName=fn["FunctionName"]).get("ReservedConcurrentExecutions")
    check("no reserved concurrency by default (a new account may not have 100 unreserved to spare)",
          concurrency is None, concurrency)
    listener = elb.describe_listeners(LoadBalancerArn=alb_arn)["Listeners"][0]
    action = listener["DefaultActions"][0]
    check("listener default action forwards to the Lambda",
          action["Type"] == "forward" and action.get("TargetGroupArn") == tg_arn, action)

    rule = events.describe_rule(Name=resources["IdleCheckSchedule"]["PhysicalResourceId"])
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    check("idle check every 2 minutes", rule["ScheduleExpression"] == "rate(2 minutes)", rule)
    check("schedule targets the function", [t["Arn"] for t in targets] == [fn["FunctionArn"]], targets)

    role = resources["Role"]["PhysicalResourceId"]
    doc = policy(iam.get_role_policy(RoleName=role, PolicyName="autostop")["PolicyDocument"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    check("start/stop scoped by the autostop tag",
          by_sid["StartStopTaggedInstances"]["Condition"]["StringEquals"] == {"aws:ResourceTag/autostop": "enabled"},
          by_sid.get("StartStopTaggedInstances"))
    ours = by_sid.get("ChangeOnlyOurRules", {})
    check("only rules tagged autostop:rule can be modified, reordered or deleted",
          ours.get("Condition") == {"Null": {"aws:ResourceTag/autostop:rule": "false"}}
          and sorted(ours.get("Action", [])) == ["elasticloadbalancing:DeleteRule", "elasticloadbalancing:ModifyRule",
                                                 "elasticloadbalancing:SetRulePriorities"], ours)
    check("may put lifecycle events on the account's buses",
          any("events:PutEvents" in json.dumps(s) and "event-bus/*" in json.dumps(s) for s in doc["Statement"]), doc)
    check("never grants TerminateInstances",
          not any("TerminateInstances" in json.dumps(s) for s in doc["Statement"]), doc)
    listener_doc = policy(iam.get_role_policy(RoleName=role, PolicyName="autostop-listeners")["PolicyDocument"])
    check("CreateRule only on the stack's listener",
          listener_doc["Statement"][0]["Resource"] in ([listener["ListenerArn"]], listener["ListenerArn"]), listener_doc)
    check("outputs: ALB DNS name and wildcard record",
          outputs.get("WildcardDnsRecord", "").startswith("*.dev.example.com CNAME ") and "AlbDnsName" in outputs, outputs)

    # 2. Existing listeners: no ALB is created, the function is told the listeners.
    cf.create_stack(
        StackName="autostop-existing",
        TemplateBody=template,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "CodeS3Bucket", "ParameterValue": "autostop-artifacts"},
            {"ParameterKey": "ExistingListenerArns", "ParameterValue": listener["ListenerArn"]},
            {"ParameterKey": "StateTableName", "ParameterValue": "autostop-existing-state"},
            {"ParameterKey": "LifecycleTopic", "ParameterValue": "create"},
        ],
    )
    stack2 = cf.describe_stacks(StackName="autostop-existing")["Stacks"][0]
    check("existing-listener stack CREATE_COMPLETE", stack2["StackStatus"] == "CREATE_COMPLETE", stack2.get("StackStatusReason"))
    raw2 = [r for r in cf.describe_stack_resources(StackName="autostop-existing")["StackResources"]
            if "LogicalResourceId" in r]
    res2 = {r["LogicalResourceId"] for r in raw2}
    check("no ALB of its own", not res2 & {"Alb", "HttpListener", "AlbSecurityGroup"}, res2)
    fn2 = [r for r in raw2 if r["LogicalResourceId"] == "Function"][0]["PhysicalResourceId"]

    env2 = lam.get_function(FunctionName=fn2)["Configuration"].get("Environment", {}).get("Variables", {})
    check("function told the existing listeners", env2.get("AUTOSTOP_LISTENER_ARNS") == listener["ListenerArn"], env2)
    outputs2 = {o["OutputKey"]: o["OutputValue"] for o in stack2.get("Outputs", [])}
    check("modify-listener command in the outputs", "modify-listener" in outputs2.get("ModifyListenerCommand", ""), outputs2)
    topic = outputs2.get("LifecycleEventsTopicArn", "")
    check("LifecycleTopic=create: a topic in the outputs", topic.startswith("arn:aws:sns:"), outputs2)
    rules = [r for r in events.list_rules(EventBusName="default")["Rules"] if "autostop" in r.get("EventPattern", "")]
    targets = events.list_targets_by_rule(Rule=rules[0]["Name"])["Targets"] if rules else []
    check("a rule sends source autostop to the topic",
          rules and json.loads(rules[0]["EventPattern"]) == {"source": ["autostop"]} and [t["Arn"] for t in targets] == [topic],
          (rules, targets))
    check("no topic without LifecycleTopic=create", "LifecycleEventsTopicArn" not in outputs, outputs)

    # 2b. Listeners of two existing ALBs: each ALB gets a Lambda target group of its own, and a
    #     reservation of concurrency is made only when asked for.
    lb2 = elb.create_load_balancer(Name="second-alb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    other_tg = elb.create_target_group(Name="placeholder", TargetType="lambda")["TargetGroups"][0]["TargetGroupArn"]
    l2 = elb.create_listener(LoadBalancerArn=lb2, Protocol="HTTP", Port=80,
                             DefaultActions=[{"Type": "forward", "TargetGroupArn": other_tg}])["Listeners"][0]["ListenerArn"]
    cf.create_stack(
        StackName="autostop-two-albs",
        TemplateBody=template,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "CodeS3Bucket", "ParameterValue": "autostop-artifacts"},
            {"ParameterKey": "ExistingListenerArns", "ParameterValue": f"{listener['ListenerArn']},{l2}"},
            {"ParameterKey": "ExistingLoadBalancerCount", "ParameterValue": "2"},
            {"ParameterKey": "ReservedConcurrency", "ParameterValue": "20"},
            {"ParameterKey": "StateTableName", "ParameterValue": "autostop-two-state"},
        ],
    )
    stack4 = cf.describe_stacks(StackName="autostop-two-albs")["Stacks"][0]
    check("two-ALB stack CREATE_COMPLETE", stack4["StackStatus"] == "CREATE_COMPLETE", stack4.get("StackStatusReason"))
    outputs4 = {o["OutputKey"]: o["OutputValue"] for o in stack4.get("Outputs", [])}
    tgs4 = [t for t in outputs4.get("LambdaTargetGroupArns", "").split(",") if t]
    kinds = [g["TargetType"] for g in elb.describe_target_groups(TargetGroupArns=tgs4)["TargetGroups"]] if tgs4 else []
    check("one Lambda target group per ALB", len(set(tgs4)) == 2 and kinds == ["lambda", "lambda"], outputs4)
    fn4 = [r for r in cf.describe_stack_resources(StackName="autostop-two-albs")["StackResources"]
           if r.get("LogicalResourceId") == "Function"][0]["PhysicalResourceId"]
    reserved = lam.get_function_concurrency(FunctionName=fn4).get("ReservedConcurrentExecutions")
    check("ReservedConcurrency=20 reserves 20", reserved == 20, reserved)

    # 3. A long stack name still deploys: names limited to 32 characters are not derived from it.
    long_name = "autostop-preview-environments-for-the-platform-team-eu-west"
    cf.create_stack(
        StackName=long_name,
        TemplateBody=template,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "CodeS3Bucket", "ParameterValue": "autostop-artifacts"},
            {"ParameterKey": "VpcId", "ParameterValue": vpc},
            {"ParameterKey": "SubnetIds", "ParameterValue": ",".join(subnets)},
            {"ParameterKey": "StateTableName", "ParameterValue": "autostop-long-state"},
        ],
    )
    stack3 = cf.describe_stacks(StackName=long_name)["Stacks"][0]
    check(f"a {len(long_name)}-character stack name deploys", stack3["StackStatus"] == "CREATE_COMPLETE",
          stack3.get("StackStatusReason"))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash is a failure with its reason, never a silent pass
        check("infra test ran to the end", False, repr(e))
    passed, failed = results.count(True), results.count(False)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
