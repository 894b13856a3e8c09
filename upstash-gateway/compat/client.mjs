// Drives the gateway with the official @upstash/redis client, in its
// default configuration (base64 response encoding). Exits non-zero on any
// mismatch. Usage: node client.mjs <url> <token> <key prefix>
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";

const [url, token, prefix] = process.argv.slice(2);
const redis = new Redis({ url, token, enableTelemetry: false });
const key = (name) => `${prefix}:${name}`;

assert.equal(await redis.set(key("greeting"), "héllo wörld"), "OK");
assert.equal(await redis.get(key("greeting")), "héllo wörld");
assert.equal(await redis.get(key("missing")), null);
assert.deepEqual(await redis.set(key("json"), { seats: [1, 2] }), "OK");
assert.deepEqual(await redis.get(key("json")), { seats: [1, 2] });
assert.equal(await redis.incr(key("counter")), 1);
assert.equal(await redis.incrby(key("counter"), 41), 42);
assert.equal(await redis.zadd(key("queue"), { score: 2, member: "b" }, { score: 1, member: "a" }), 2);
assert.deepEqual(await redis.zrange(key("queue"), 0, -1), ["a", "b"]);
assert.equal(await redis.hset(key("hash"), { rate: 60, paused: "no" }), 2);
assert.deepEqual(await redis.hgetall(key("hash")), { rate: 60, paused: "no" });

const pipeline = redis.pipeline();
pipeline.incr(key("p"));
pipeline.incr(key("p"));
pipeline.get(key("greeting"));
assert.deepEqual(await pipeline.exec(), [1, 2, "héllo wörld"]);

const tx = redis.multi();
tx.set(key("tx"), "a");
tx.append(key("tx"), "b");
tx.get(key("tx"));
assert.deepEqual(await tx.exec(), ["OK", 2, "ab"]);

const script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
assert.equal(await redis.eval(script, [key("lua")], [5]), 5);
assert.equal(await redis.evalsha(await redis.scriptLoad(script), [key("lua")], [5]), 10);

await assert.rejects(redis.incr(key("greeting")), /not an integer/);
await assert.rejects(new Redis({ url, token: "wrong", enableTelemetry: false }).get(key("greeting")));
console.log("ok");
