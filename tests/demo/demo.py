"""`make demo`: the whole product on one machine, with moto standing in for AWS.

Runs inside tests/with-moto.sh (AWS_ENDPOINT_URL points at moto). It creates an ALB with a
listener whose default action is the autostop Lambda's target group, a stopped EC2 instance
behind the `api` target group and an ECS service at 0 behind the `web` target group, writes a
config, and starts the real autostop binary (`autostop events`: one warm Lambda instance).

Then it plays the ALB on 127.0.0.1:PORT:
- rules are walked by priority, first match wins, as an ALB does; a matching rule forwards to
  its target group with a weight above 0: the app's local backend (counted as `RequestCount` in
  moto's CloudWatch, as the ALB would) or autostop's Lambda group;
- autostop's Lambda group, and the default action, go to autostop as an ALB event.

The `admin` host is behind sign-in: its standing rule sits on an HTTPS listener with an
authenticate-oidc action first. The front end plays that listener too (one port for both): it
sends a browser without a session to a demo sign-in page, then forwards with the signed
`x-amzn-oidc-data` an ALB adds (ES256, a demo key it also serves as the ELB key server does),
so autostop verifies who woke it.

Backends stand in for the instance and the ECS tasks: each boots a few seconds after moto says
its resource runs and is registered in the target group only once it answers HTTP (as ALB
health checks and ECS registration would). The idle check runs every 20 s, so an environment
left alone goes back to sleep after its idle time (1 minute here).
"""
import base64
import fnmatch
import html
import http.client
import http.server
import itertools
import json
import os
import queue
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "target", "demo")
BOOT_SECONDS = float(os.environ.get("DEMO_BOOT_SECONDS", "4"))
IDLE_CHECK_EVERY = float(os.environ.get("DEMO_IDLE_CHECK_SECONDS", "20"))
DEMO_USER = "dev@demo.example.com"
SESSION_COOKIE = "AWSELBAuthSessionCookie-0"


def log(msg):
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    """The AWS side, in moto."""

    def __init__(self):
        self.ec2, self.elb, self.ecs = boto3.client("ec2"), boto3.client("elbv2"), boto3.client("ecs")
        self.cw, self.ddb = boto3.client("cloudwatch"), boto3.client("dynamodb")
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        subnets = [s["SubnetId"] for s in self.ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
        self.lb = self.elb.create_load_balancer(Name="demo", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        lambda_tg = self.elb.create_target_group(Name="demo-autostop", TargetType="lambda")["TargetGroups"][0]
        self.lambda_tg = lambda_tg["TargetGroupArn"]
        self.listener = self.elb.create_listener(
            LoadBalancerArn=self.lb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": lambda_tg["TargetGroupArn"]}],
        )["Listeners"][0]["ListenerArn"]
        # The HTTPS listener a rule behind sign-in needs (moto takes any certificate ARN).
        self.https_listener = self.elb.create_listener(
            LoadBalancerArn=self.lb, Protocol="HTTPS", Port=443,
            Certificates=[{"CertificateArn": "arn:aws:iam::123456789012:server-certificate/demo"}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": lambda_tg["TargetGroupArn"]}],
        )["Listeners"][0]["ListenerArn"]
        tg = lambda name, kind: self.elb.create_target_group(
            Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType=kind)["TargetGroups"][0]["TargetGroupArn"]
        self.api_tg, self.web_tg = tg("demo-api", "instance"), tg("demo-web", "ip")
        self.admin_tg = tg("demo-admin", "instance")
        self.instance = self.ec2.run_instances(
            ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "autostop", "Value": "enabled"}]}],
        )["Instances"][0]["InstanceId"]
        self.db = self.ec2.run_instances(
            ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "autostop", "Value": "enabled"}]}],
        )["Instances"][0]["InstanceId"]
        self.admin = self.ec2.run_instances(
            ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "autostop", "Value": "enabled"}]}],
        )["Instances"][0]["InstanceId"]
        self.ec2.stop_instances(InstanceIds=[self.instance, self.db, self.admin])
        self.ecs.create_cluster(clusterName="demo")
        self.ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
        self.ecs.create_service(cluster="demo", serviceName="web", taskDefinition="web", desiredCount=0,
                                tags=[{"key": "autostop:desired-count", "value": "2"}])
        self.ddb.create_table(
            TableName="autostop-demo-state", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "rule", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "rule", "KeyType": "HASH"}])

    def config(self):
        return f"""# Written by `make demo`.
listener_arns = ["{self.listener}", "{self.https_listener}"]
state_table = "autostop-demo-state"
idle = "1m"
hold = "20s"
settle = "2s"
metrics_lag = "0s"   # moto's CloudWatch shows datapoints at once
events = {{ bus = "default" }}             # lifecycle events onto moto's EventBridge
dashboard = {{ host = "autostop.localhost" }}  # the fleet page, behind the sign-in below
auth = {{ oidc = {{ issuer = "https://login.demo.localhost", authorization_endpoint = "https://login.demo.localhost/authorize",
         token_endpoint = "https://login.demo.localhost/token", user_info_endpoint = "https://login.demo.localhost/userinfo",
         client_id = "autostop-demo", client_secret_env = "DEMO_OIDC_CLIENT_SECRET" }} }}

[[rules]]
name = "db"          # no hosts: a dependency only, ready when its instance runs
ec2 = {{ instance_ids = ["{self.db}"] }}

[[rules]]
name = "api"
hosts = ["api.localhost"]
target_group_arn = "{self.api_tg}"
ec2 = {{ instance_ids = ["{self.instance}"] }}
depends_on = ["db"]  # woken first; api starts 3 s after it is ready
delay = "3s"
auth = "none"        # public, unlike admin and the fleet page

[[rules]]
name = "web"
hosts = ["web.localhost", "*.web.localhost"]
target_group_arn = "{self.web_tg}"
ecs = {{ cluster = "demo", service = "web" }}
wake = "click"   # a visit shows a Wake button; only pressing it wakes the service
auth = "none"

[[rules]]
name = "admin"       # behind sign-in: only a signed-in user wakes or reaches it
hosts = ["admin.localhost"]
target_group_arn = "{self.admin_tg}"
ec2 = {{ instance_ids = ["{self.admin}"] }}   # the top-level auth: behind sign-in
"""

    def forward_rules(self, listener):
        """(hosts, target group taking the traffic, authenticates first) of every forward rule of
        `listener`, in priority order."""
        rules = []
        for r in self.elb.describe_rules(ListenerArn=listener)["Rules"]:
            if r.get("IsDefault"):
                continue
            hosts = [v for c in r["Conditions"] if c["Field"] == "host-header"
                     for v in c.get("HostHeaderConfig", {}).get("Values", c.get("Values", []))]
            tgs = []
            for a in (a for a in r["Actions"] if a["Type"] == "forward"):
                members = a.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": a["TargetGroupArn"]}]
                tgs += [m["TargetGroupArn"] for m in members if m.get("Weight", 1) > 0]
            auth = any(a["Type"].startswith("authenticate-") for a in r["Actions"])
            rules.append((int(r["Priority"]), hosts, tgs[0] if tgs else None, auth))
        return [(hosts, tg, auth) for _, hosts, tg, auth in sorted(rules, key=lambda r: r[0])]


class Backend:
    """A stand-in for one instance or task: an HTTP server that starts answering after a boot."""

    def __init__(self, name, detail):
        self.name, self.detail, self.port = name, detail, free_port()
        self.server = None
        self.timer = threading.Timer(BOOT_SECONDS, self._start)
        self.timer.start()

    def _start(self):
        name, detail = self.name, self.detail

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/__autostop/"):
                    self.send_error(404, "not found")  # the app answers now: no x-autostop header
                    return
                body = (f"<!doctype html><html><head><title>{name} is awake</title></head><body>"
                        f"<h1>Hello from {name}</h1><p>{detail}</p></body></html>").encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answers(self):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=0.5)
            return True
        except Exception:
            return False

    def stop(self):
        self.timer.cancel()
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class Supervisor:
    """Boots and stops backends as moto's resources change, and (de)registers them."""

    def __init__(self, world):
        self.world = world
        self.backends = {}      # (target group, target id) -> Backend
        self.registered = set()
        self.lock = threading.Lock()

    def port_for(self, tg):
        with self.lock:
            ports = [b.port for (t, tid), b in self.backends.items() if t == tg and (t, tid) in self.registered]
        return ports[0] if ports else None

    def tick(self):
        w = self.world
        wanted = {}
        for name, tg, instance in (("api", w.api_tg, w.instance), ("admin", w.admin_tg, w.admin)):
            inst = w.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
            if inst["State"]["Name"] == "running":
                wanted[(tg, instance)] = (name, f"served by EC2 instance {instance}")
        svc = w.ecs.describe_services(cluster="demo", services=["web"])["services"][0]
        for i in range(svc["desiredCount"]):
            wanted[(w.web_tg, f"10.0.0.{10 + i}")] = ("web", f"served by ECS task {i + 1} of {svc['desiredCount']}")
        with self.lock:
            for key, (name, detail) in wanted.items():
                if key not in self.backends:
                    log(f"{name}: {key[1]} is running; its backend boots in {BOOT_SECONDS:.0f}s")
                    self.backends[key] = Backend(name, detail)
            for key in list(self.backends):
                if key not in wanted:
                    if key in self.registered:
                        w.elb.deregister_targets(TargetGroupArn=key[0], Targets=[{"Id": key[1], "Port": 80}])
                        self.registered.discard(key)
                    self.backends.pop(key).stop()
                    log(f"{key[1]} stopped; backend gone")
            pending = [(k, b) for k, b in self.backends.items() if k not in self.registered]
        for key, backend in pending:
            if backend.answers():
                w.elb.register_targets(TargetGroupArn=key[0], Targets=[{"Id": key[1], "Port": 80}])
                with self.lock:
                    self.registered.add(key)
                log(f"{backend.name}: {key[1]} answers HTTP on 127.0.0.1:{backend.port}; registered in its target group")


class Autostop:
    """The real binary, as one warm Lambda instance (`autostop events`)."""

    def __init__(self, binary, config_path, keys_url):
        env = dict(os.environ, AUTOSTOP_CONFIG=config_path, RUST_LOG=os.environ.get("RUST_LOG", "info"),
                   AUTOSTOP_ELB_KEYS_URL=keys_url, DEMO_OIDC_CLIENT_SECRET="demo-client-secret")
        self.log = open(os.path.join(OUT, "autostop.log"), "w")
        self.proc = subprocess.Popen([binary, "events"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env, text=True, bufsize=1)
        self.ids = itertools.count(1)
        self.waiting = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                q = self.waiting.pop(msg.get("id"), None)
            if q:
                q.put(msg)

    def call(self, event, timeout=90):
        q, i = queue.Queue(), next(self.ids)
        with self.lock:
            self.waiting[i] = q
            self.proc.stdin.write(json.dumps({"id": i, "event": event}) + "\n")
            self.proc.stdin.flush()
        msg = q.get(timeout=timeout)
        if "error" in msg:
            raise RuntimeError(msg["error"])
        return msg["response"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def b64url(data):
    """base64url with its padding, as ALB writes its tokens (strict JWT parsers reject it)."""
    return base64.urlsafe_b64encode(data).decode()


class SignIn:
    """The ALB's authenticate action, played: a demo key signs the user claims the ALB sends as
    `x-amzn-oidc-data`, and its public key is served as the ELB key server serves it."""
    KID = "demo-key-1"

    def __init__(self, load_balancer):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = load_balancer
        self.pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, email):
        now = int(time.time())
        header = {"typ": "JWT", "kid": self.KID, "alg": "ES256", "iss": "https://login.demo.localhost",
                  "client": "autostop-demo", "signer": self.signer, "exp": now + 120}
        claims = {"sub": "demo-user-1", "email": email, "name": "Demo Developer", "exp": now + 120,
                  "iss": "https://login.demo.localhost"}
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        r, s = utils.decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return signing + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


LOGIN_PAGE = """<!doctype html><html><head><title>Sign in · demo IdP</title>
<style>body{{font:16px system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head><body>
<h1>Sign in</h1><p>The demo's identity provider: the load balancer sends you here before
<code>{host}</code>, which is behind sign-in.</p>
<form method="post" action="/__demo_login"><input type="hidden" name="to" value="{to}">
<button id="sign-in" type="submit">Sign in as {user}</button></form></body></html>"""


class QuietServer(http.server.ThreadingHTTPServer):
    """A browser that goes away mid-answer (a reload, a closed tab) is no error worth a traceback."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def host_matches(pattern, host):
    """ALB host matching: case-insensitive, `*` any run of characters, `?` exactly one."""
    return fnmatch.fnmatchcase(host.lower(), pattern.lower().replace("[", "[[]"))


class Metrics:
    """RequestCount per target group, flushed to moto's CloudWatch every few seconds."""

    def __init__(self, world):
        self.world, self.counts, self.lock = world, {}, threading.Lock()
        self.lb_dim = world.listener.split(":listener/")[1].rsplit("/", 1)[0]

    def count(self, tg):
        with self.lock:
            self.counts[tg] = self.counts.get(tg, 0) + 1

    def flush(self):
        with self.lock:
            counts, self.counts = self.counts, {}
        for tg, n in counts.items():
            self.world.cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
                "MetricName": "RequestCount", "Value": n, "Unit": "Count",
                "Dimensions": [{"Name": "TargetGroup", "Value": tg.split(":", 5)[5]},
                               {"Name": "LoadBalancer", "Value": self.lb_dim}]}])


def front_end(port, world, supervisor, autostop, metrics, sign_in):
    """The ALB stand-in on 127.0.0.1:port: its HTTP listener, and for hosts whose rule on the
    HTTPS listener authenticates first, that listener."""
    cache = {"at": 0, "http": [], "https": []}
    cache_lock = threading.Lock()

    def forward_rules(which):
        with cache_lock:
            if time.time() - cache["at"] > 1:
                cache["http"] = world.forward_rules(world.listener)
                cache["https"] = world.forward_rules(world.https_listener)
                cache["at"] = time.time()
            return cache[which]

    def first_match(rules, host):
        return next(((t, auth) for hosts, t, auth in rules if any(host_matches(h, host) for h in hosts)), (None, False))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_any(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            host = (self.headers.get("host") or "").split(":")[0].lower()
            extra = {}
            for k in [k for k in self.headers if k.lower().startswith("x-amzn-oidc")]:
                del self.headers[k]  # the ALB drops what a client sends under its names
            if self.path.startswith("/__demo_keys/"):
                return self.reply(200, {"content-type": "text/plain"}, sign_in.pem)
            if self.path.split("?", 1)[0] == "/__demo_login":
                return self.login(host, body)
            tg, auth = first_match(forward_rules("https"), host)
            if auth:
                if f"{SESSION_COOKIE}=" not in (self.headers.get("cookie") or ""):
                    to = urllib.parse.quote(self.path, safe="")
                    return self.reply(302, {"location": f"/__demo_login?to={to}"}, b"")
                extra = {"x-amzn-oidc-data": sign_in.token(DEMO_USER), "x-amzn-oidc-identity": "demo-user-1",
                         "x-forwarded-proto": "https"}
            else:
                tg, _ = first_match(forward_rules("http"), host)
            if tg and tg != world.lambda_tg:
                backend = supervisor.port_for(tg)
                if backend is None:
                    return self.reply(502, {"content-type": "text/plain"}, b"502 Bad Gateway (no healthy target)")
                metrics.count(tg)
                conn = http.client.HTTPConnection("127.0.0.1", backend, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                headers.update(extra)
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                return self.reply(r.status, {k: v for k, v in r.getheaders()
                                             if k.lower() not in ("connection", "transfer-encoding", "content-length")},
                                  data)
            # Multi-value mode, as the template sets it on the Lambda target group: every value of
            # a repeated header or query parameter, in order, not decoded.
            path, _, query = self.path.partition("?")
            params, headers = {}, {}
            for p in (p for p in query.split("&") if p):
                k, _, v = p.partition("=")
                params.setdefault(k, []).append(v)
            for k, v in list(self.headers.items()) + list(extra.items()):
                headers.setdefault(k.lower(), []).append(v)
            event = {
                "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-autostop/1"}},
                "httpMethod": self.command, "path": path, "multiValueQueryStringParameters": params,
                "multiValueHeaders": headers,
                "body": base64.b64encode(body).decode() if body else "", "isBase64Encoded": bool(body),
            }
            try:
                resp = autostop.call(event)
            except Exception as e:  # the ALB answers 502 when the Lambda fails
                return self.reply(502, {"content-type": "text/plain"}, f"502 Bad Gateway ({e})".encode())
            data = resp.get("body") or ""
            data = base64.b64decode(data) if resp.get("isBase64Encoded") else data.encode()
            headers = resp.get("multiValueHeaders") or {k: [v] for k, v in (resp.get("headers") or {}).items()}
            self.reply(resp["statusCode"], headers, data)

        def login(self, host, body):
            """The demo IdP: a page with one button; its POST starts the session the ALB keeps in
            its cookie and returns the browser where it was going."""
            if self.command == "POST":
                to = urllib.parse.parse_qs(body.decode()).get("to", ["/"])[0]
                to = to if to.startswith("/") and not to.startswith("//") else "/"
                cookie = f"{SESSION_COOKIE}=demo; Path=/; HttpOnly; SameSite=Lax"
                return self.reply(302, {"location": to, "set-cookie": cookie}, b"")
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            to = query.get("to", ["/"])[0]
            page = LOGIN_PAGE.format(host=html.escape(host), to=html.escape(to, quote=True), user=DEMO_USER)
            return self.reply(200, {"content-type": "text/html; charset=utf-8"}, page.encode())

        def reply(self, status, headers, data):
            # send_response_only: send_response would add a Server and a Date of its own to the
            # app's (each header twice); an ALB passes its target's on.
            self.send_response_only(status)
            names = {k.lower() for k in headers}
            if "date" not in names:
                self.send_header("date", self.date_time_string())
            if "server" not in names:
                self.send_header("server", "awselb/2.0")
            for k, values in headers.items():
                for v in values if isinstance(values, list) else [values]:
                    if k.lower() == "set-cookie":
                        # The demo serves over plain HTTP what an HTTPS listener would: a browser
                        # drops a Secure cookie set over HTTP, so the demo takes the flag off.
                        v = v.replace("; Secure", "")
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any

        def log_message(self, fmt, *args):
            pass

    server = QuietServer(("127.0.0.1", port), Handler)
    return server


def every(seconds, fn, name):
    def loop():
        while True:
            time.sleep(seconds)
            try:
                fn()
            except Exception as e:
                log(f"{name} failed: {e}")
    threading.Thread(target=loop, daemon=True).start()


def main():
    port = int(os.environ.get("DEMO_PORT", "8080"))
    binary = os.environ.get("AUTOSTOP_BIN", os.path.join(ROOT, "target", "debug", "autostop"))
    os.makedirs(OUT, exist_ok=True)
    world = World()
    config_path = os.path.join(OUT, "autostop.toml")
    with open(config_path, "w") as f:
        f.write(world.config())
    autostop = Autostop(binary, config_path, f"http://127.0.0.1:{port}/__demo_keys/{{kid}}")
    supervisor, metrics, sign_in = Supervisor(world), Metrics(world), SignIn(world.lb)
    # As `make deploy` does: the standing rules exist before the first request, so admin's
    # (behind sign-in) is on the HTTPS listener from the start.
    autostop.call({"autostop": "sync"})

    def idle_check():
        report = autostop.call({"version": "0", "id": "demo", "detail-type": "Scheduled Event",
                                "source": "aws.events", "detail": {}})
        for r in report["rules"]:
            if r["action"] != "asleep":
                log(f"idle check: {r['rule']}: {r['action']} ({r['outcome']}) - {r['reason']}")

    every(1, supervisor.tick, "supervisor")
    every(5, metrics.flush, "metrics")
    every(IDLE_CHECK_EVERY, idle_check, "idle check")
    server = front_end(port, world, supervisor, autostop, metrics, sign_in)
    stop = threading.Event()
    # Explicit handlers: a shell that started us in the background may have left SIGINT ignored.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(f"config: {config_path}; autostop log: {os.path.join(OUT, 'autostop.log')}")
    log("open these; each is asleep until you do (curl works too: curl -i http://api.localhost:%d/):" % port)
    log(f"  http://api.localhost:{port}/   EC2 instance {world.instance}, after its database {world.db}")
    log(f"  http://web.localhost:{port}/   ECS service demo/web (remembers 2 tasks; wakes on a click)")
    log(f"  http://admin.localhost:{port}/ EC2 instance {world.admin}, behind sign-in (as {DEMO_USER})")
    log(f"  http://autostop.localhost:{port}/ the fleet page, behind sign-in: every rule, 30 days, buttons")
    log("left alone for about a minute, each goes back to sleep. Ctrl-C stops the demo.")
    print("autostop demo ready", flush=True)
    try:
        while not stop.is_set():
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    log("stopping")
    server.shutdown()
    autostop.stop()
    for b in list(supervisor.backends.values()):
        b.stop()


if __name__ == "__main__":
    main()
