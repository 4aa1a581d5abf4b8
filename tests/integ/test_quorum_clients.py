"""test_quorum_clients - job frameworks that declare quorum queues (issue 15).

Debian's Celery 5.2 and kombu 5.2 (python3-celery), unchanged, against a
real warrend:
  * kombu: a producer declares Queue(..., queue_arguments={'x-queue-type':
    'quorum'}) and publishes a job set; a consumer with a per-consumer
    prefetch takes, rejects once (redelivered with x-delivery-count 1) and
    acks every job.
  * Celery: a worker (solo pool, late acks) on a quorum task queue runs 20
    tasks whose results come back through the rpc:// backend (direct
    reply-to).

Against RabbitMQ 3.10 (WARREN_TEST_PORT) Celery 5.2's worker fails: kombu
asks a broker that calls itself RabbitMQ >= 3.3 for a global prefetch,
which 3.10's quorum queues refuse (540 "does not support global qos"),
and Warren refuses it the same way (test_quorum). Against warrend kombu
uses a per-consumer prefetch, so Celery runs unchanged. On RabbitMQ the
worker here is started the way Celery 5.5's worker_detect_quorum_queues
makes it behave (per-consumer prefetch), so the same job set runs there.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import harness
from amqpcase import SemanticsCase

try:
    import kombu
    import celery  # noqa: F401
except ImportError:  # pragma: no cover
    kombu = None

APP = textwrap.dedent('''
    import os
    from celery import Celery
    from kombu import Queue
    app = Celery("qqapp", broker="amqp://guest:guest@127.0.0.1:%s//" % os.environ["QQ_PORT"],
                 backend="rpc://")
    app.conf.task_queues = [Queue(os.environ["QQ_QUEUE"], routing_key=os.environ["QQ_QUEUE"],
                                  queue_arguments={"x-queue-type": "quorum"}, durable=True)]
    app.conf.task_default_queue = os.environ["QQ_QUEUE"]
    app.conf.task_acks_late = True
    app.conf.worker_prefetch_multiplier = 4
    app.conf.broker_connection_retry_on_startup = True

    @app.task
    def add(a, b):
        return a + b
''')

# Celery >= 5.5's worker_detect_quorum_queues, for Debian's 5.2 on RabbitMQ.
PER_CONSUMER = ("import kombu.transport.pyamqp as t; "
                "t.Transport.qos_semantics_matches_spec = lambda self, c: True; ")


@unittest.skipIf(kombu is None, "python3-celery (kombu) is not installed")
class QuorumClients(SemanticsCase):
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d//" % self.broker.port

    def test_kombu_job_set(self):
        name = self.unique("kq")
        self.forget("queue", name)
        jobs = ["job-%d" % i for i in range(50)]
        with kombu.Connection(self.url()) as conn:
            queue = kombu.Queue(name, routing_key=name, durable=True,
                                queue_arguments={"x-queue-type": "quorum"})
            with conn.Producer() as prod:
                for j in jobs:
                    prod.publish({"job": j}, routing_key=name, declare=[queue],
                                 serializer="json", delivery_mode=2)
            done, seen = [], {}

            def on_message(body, message):
                j = body["job"]
                seen[j] = seen.get(j, 0) + 1
                if seen[j] == 1 and j.endswith("7"):
                    self.assertFalse(message.delivery_info["redelivered"])
                    message.requeue()
                    return
                if seen[j] == 2:
                    self.assertTrue(message.delivery_info["redelivered"])
                    self.assertEqual(message.headers.get("x-delivery-count"), 1)
                done.append(j)
                message.ack()
            with conn.Consumer(queue, callbacks=[on_message], accept=["json"]) as cons:
                cons.qos(prefetch_count=10)
                deadline = time.monotonic() + 30
                while len(done) < len(jobs) and time.monotonic() < deadline:
                    try:
                        conn.drain_events(timeout=1)
                    except OSError:
                        pass
        self.assertEqual(sorted(done), sorted(jobs))
        self.assertEqual(self.ready(name), 0)

    def test_celery_worker(self):
        name = self.unique("cq")
        self.forget("queue", name)
        d = tempfile.mkdtemp(prefix="warren-celery-")
        with open(os.path.join(d, "qqapp.py"), "w") as f:
            f.write(APP)
        env = dict(os.environ, QQ_PORT=str(self.broker.port), QQ_QUEUE=name, PYTHONPATH=d)
        pre = PER_CONSUMER if self.is_rabbitmq else ""
        log = open(os.path.join(d, "worker.log"), "w+")
        w = subprocess.Popen(
            ["/usr/bin/python3", "-c",
             pre + "import sys; from celery.__main__ import main; sys.argv[0] = 'celery'; main()",
             "-A", "qqapp", "worker", "--pool=solo", "-l", "info", "--without-mingle",
             "--without-gossip", "--without-heartbeat"],
            cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            os.environ["QQ_PORT"] = str(self.broker.port)
            os.environ["QQ_QUEUE"] = name
            sys.path.insert(0, d)
            import qqapp
            results = [qqapp.add.delay(i, i) for i in range(20)]
            got = [r.get(timeout=60) for r in results]
            self.assertEqual(got, [2 * i for i in range(20)])
            info = self.ch.queue_declare(name, passive=True).method
            self.assertEqual(info.message_count, 0)
        finally:
            w.terminate()
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
            log.seek(0)
            text = log.read()
            log.close()
            if sys.exc_info()[0] is not None:
                print(text[-3000:])
            self.assertNotIn("NOT_IMPLEMENTED", text)


if __name__ == "__main__":
    harness.main()
