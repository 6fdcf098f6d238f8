"""Reads the change feed from NATS JetStream, as a service in any language with a NATS client can.

The event relay (`event-relay`, README: Events) publishes every event once, in feed order, to the
stream PARTNERCENTER_EVENTS on subjects `partnercenter.events.<resource type>.<event>`; each
message is a `partnercenter.event.v1.Event` in protobuf, with its cursor as the message id
(`Nats-Msg-Id`). This consumer is durable: stopped and started again under the same name, it goes
on after the last message it acknowledged. It prints one JSON line per event; `--subjects` narrows
it (`partnercenter.events.reseller_link.*`), `--idle-exit` makes it stop once nothing has come for
that many seconds (for scripts). No `nats` CLI is needed.

    pip install -r examples/python/requirements.txt
    buf generate --template buf.gen.yaml -o /tmp/stubs
    PYTHONPATH=/tmp/stubs/python python3 examples/python/nats_consumer.py --server nats://127.0.0.1:4222
"""

import argparse
import asyncio

import nats
from google.protobuf import json_format
from nats.js.api import AckPolicy, ConsumerConfig

from partnercenter.event.v1 import event_pb2


async def consume(args):
    client = await nats.connect(args.server)
    try:
        jetstream = client.jetstream()
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
        subscription = await jetstream.pull_subscribe(
            args.subjects, durable=args.durable, stream=args.stream, config=config
        )
        while True:
            try:
                messages = await subscription.fetch(100, timeout=args.idle_exit or 5)
            # nats-py raises its own TimeoutError, or (when the wait ran out just as its second
            # pull request was due, as on a loaded machine) asyncio's, of which it is a kind.
            except asyncio.TimeoutError:
                if args.idle_exit:
                    return
                continue
            for message in messages:
                event = event_pb2.Event()
                event.ParseFromString(message.data)
                print(json_format.MessageToJson(event, indent=None), flush=True)
                # Acknowledged once handled: a consumer that dies first gets it again.
                await message.ack()
    finally:
        await client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--stream", default="PARTNERCENTER_EVENTS")
    parser.add_argument("--subjects", default="partnercenter.events.>")
    parser.add_argument("--durable", default="example-consumer", help="the consumer's name on the server")
    parser.add_argument("--idle-exit", type=float, default=0, help="stop after this many quiet seconds")
    asyncio.run(consume(parser.parse_args()))


if __name__ == "__main__":
    main()
