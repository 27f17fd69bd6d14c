/** Every form of a Redis URL is redacted in messages; `?password=` is honoured; a URL that does not parse is never echoed. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectionOptions, INVALID_URL_TEXT, plainTextWarning, redactArgs, redactMessage, redactUrl } from "../../src/sweep/queue-url.ts";

const PW = "s3cr3t-Pw";

test("redactUrl hides user info, the query string and the fragment; a URL that does not parse is never echoed", () => {
  assert.equal(redactUrl(`redis://h:1/?password=${PW}`), "redis://h:1?***");
  assert.equal(redactUrl(`redis://h:1/0?password=${PW}&x=1`), "redis://h:1/0?***");
  assert.equal(redactUrl(`redis://h:1#${PW}`), "redis://h:1?***");
  assert.equal(redactUrl(`redis://user:${PW}@h:1/2`), "redis://***:***@h:1/2");
  assert.equal(redactUrl(`rediss://:${PW}@h`), "rediss://:***@h");
  assert.equal(redactUrl("redis://h:1"), "redis://h:1");
  assert.equal(redactUrl(`redis://h:1/${PW}`), "redis://h:1/***", "a path that is not a database number");
  // does not parse (a '#' / '?' / space inside the password, a bad port, no scheme): not one character of it comes back
  for (const bad of [`redis://:pa#${PW}@h:1`, `redis://:${PW}?x@h:1`, `redis://:${PW}@h:99999`, `//:${PW}@h`, `redis://u:${PW} x@[h:1`, PW]) {
    assert.equal(redactUrl(bad), INVALID_URL_TEXT, bad);
  }
});

test("redactArgs redacts the --queue value whatever its form, and any argument holding a Redis URL, to its end", () => {
  assert.deepEqual(redactArgs(["bench", "--queue", `redis://:${PW}@h:1`, "--out", "x"]), ["bench", "--queue", "redis://:***@h:1", "--out", "x"]);
  assert.deepEqual(redactArgs([`--queue=rediss://u:${PW}@h:1`]), ["--queue=rediss://***:***@h:1"]);
  assert.deepEqual(redactArgs(["--queue", `redis://h:1/?password=${PW}`]), ["--queue", "redis://h:1?***"]);
  // a password with a space: the whole argument is one URL (the old pattern stopped at the space)
  const spaced = redactArgs(["--queue", `redis://:top ${PW}@h:1`]).join(" ");
  assert.ok(!spaced.includes(PW), spaced);
  const inText = redactArgs([`url=REDIS://:${PW}@h:1`]).join(" ");
  assert.ok(!inText.includes(PW), inText);
  // not a Redis scheme, or not a URL at all, after --queue: still never shown
  assert.deepEqual(redactArgs(["--queue", `http://:${PW}@h`]), ["--queue", "http://:***@h"]);
  assert.deepEqual(redactArgs(["--queue", `:${PW}@h:1`]), ["--queue", INVALID_URL_TEXT]);
  assert.deepEqual(redactArgs(["--queue", "--queue-name", "q"]), ["--queue", "--queue-name", "q"], "a bare --queue (URL from the environment)");
});

test("?password= is honoured as the password (not silently ignored); other parameters and two passwords are refused without echoing them", () => {
  assert.equal(connectionOptions({ url: `redis://h:1/?password=${PW}` }).password, PW);
  assert.equal(connectionOptions({ url: `redis://h:1/?password=${encodeURIComponent("a b&c")}` }).password, "a b&c");
  assert.equal(connectionOptions({ url: `redis://:${PW}@h:1/?password=${PW}` }).password, PW, "the same password twice is fine");
  assert.equal(connectionOptions({ url: `redis://h:1/?password=${PW}`, password: "fromenv" }).password, "fromenv", "the environment's password wins");
  const refusal = (url: string, re: RegExp) =>
    assert.throws(() => connectionOptions({ url }), (e: Error) => {
      assert.match(e.message, re);
      assert.ok(!e.message.includes(PW), `the password is echoed: ${e.message}`);
      return true;
    });
  refusal(`redis://:other@h:1/?password=${PW}`, /gives two different passwords/);
  refusal(`redis://h:1/?password=${PW}&password=x`, /gives password more than once/);
  refusal(`redis://h:1/?pasword=${PW}`, /unknown URL parameter "pasword" in redis:\/\/h:1\?\*\*\* \(the only one read is password\)/);
  refusal(`redis://:${PW}@h:1#frag`, /has a fragment/);
  refusal(`redis://:${PW}@h:99999`, /^--queue: the URL is not valid \(expected redis:\/\/HOST:PORT/);
  refusal(`redis://:pa#${PW}@h:1`, /the URL is not valid/);
  refusal(`:${PW}@h:1`, /the URL is not valid/);
  refusal(`http://:${PW}@h:1`, /expected redis:\/\/HOST:PORT or rediss:\/\/\.\.\., got http:\/\/:\*\*\*@h:1/);
  refusal(`redis://:${PW}@h:1/x`, /the path of redis:\/\/:\*\*\*@h:1\/\*\*\* must be a database number/);
  refusal(`redis://h:1/${PW}`, /the path of redis:\/\/h:1\/\*\*\* must be a database number/);
});

test("redactMessage removes the URL and every secret of the connection from a driver's message", () => {
  const c = { url: `redis://admin:${PW}@h:1/?password=${PW}`, password: "envpw" };
  const m = redactMessage(`connect to ${c.url} failed; auth ${PW} / envpw / admin`, c);
  assert.ok(!m.includes(PW) && !m.includes("envpw") && !m.includes("admin"), m);
  assert.match(m, /connect to redis:\/\/\*\*\*:\*\*\*@h:1\?\*\*\* failed/);
});

test("a plain redis:// to another machine gets a warning (redacted); rediss:// and loopback hosts do not", () => {
  const w = plainTextWarning({ url: "redis://:s3cret@10.1.2.3:6379/0" });
  assert.ok(w, "no warning for plain text to another machine");
  assert.match(w, /^warning: --queue redis:\/\/:\*\*\*@10\.1\.2\.3:6379\/0 is plain redis:\/\/ to another machine: .*use rediss:\/\/ \(TLS\)/);
  assert.equal(w.includes("s3cret"), false);
  assert.ok(plainTextWarning({ url: "redis://queue.example.org" }));
  for (const url of ["rediss://queue.example.org:6380", "redis://127.0.0.1:6379", "redis://127.9.8.7", "redis://localhost:6379", "redis://[::1]:6379", "not a url"]) {
    assert.equal(plainTextWarning({ url }), null, url);
  }
});
