/**
 * Every registered method's declared properties (MethodEntry.properties, see MethodProperty in
 * src/balance/types.ts), checked on random and adversarial inputs by test/balance/property-checks.ts.
 * The method list comes from the registry: a new method is checked by adding its registry line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BUILTIN_METHODS, METHODS, registerMethod, unregisterMethod } from "../../src/balance/registry.ts";
import { METHOD_PROPERTIES, type MethodEntry, type MethodProperty } from "../../src/balance/types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf } from "../../src/balance/common.ts";
import { propertyViolation } from "./property-checks.ts";

for (const [name, entry] of METHODS) {
  test(`${name}: every declared property holds (${(entry.properties ?? []).join(", ") || "none declared"})`, () => {
    for (const p of entry.properties ?? []) {
      const v = propertyViolation(entry, p);
      assert.equal(v, null, `${name} declares "${p}" but: ${v}`);
    }
  });
}

test("every built-in method declares its properties (possibly none), each a known property, at most once", () => {
  for (const e of Object.values(BUILTIN_METHODS) as MethodEntry[]) {
    assert.ok(Array.isArray(e.properties), `${e.name}: no properties field (declare [] when it guarantees none)`);
    for (const p of e.properties) assert.ok(METHOD_PROPERTIES.includes(p), `${e.name}: unknown property ${p}`);
    assert.equal(new Set(e.properties).size, e.properties.length, `${e.name}: a property declared twice`);
  }
});

/** A deliberately plain method: direction = Σ g_i (EW's update), with the properties we choose to declare. */
function sumMethod(name: string, properties: readonly MethodProperty[]): MethodEntry<Record<string, never>> {
  return {
    name,
    label: name,
    kind: "gradient",
    summary: "test: plain sum of the task gradients",
    defaults: {},
    properties,
    create(numTasks) {
      checkTasks(name, numTasks);
      return {
        name,
        kind: "gradient",
        numTasks,
        combine(input) {
          checkInput(name, numTasks, input);
          return finish(input.grads, gramOf(input), new Float64Array(numTasks).fill(1));
        },
        getState: () => null,
        setState: (s) => expectNullState(name, s),
      };
    },
  };
}

test("the checks can fail: a plain sum conflicts and is not scale-invariant; an undeclared property is not required", () => {
  const honest = sumMethod("sum-honest", ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"]);
  for (const p of METHOD_PROPERTIES) {
    const v = propertyViolation(honest, p);
    if (honest.properties!.includes(p)) assert.equal(v, null, `the sum is ${p}`);
    else assert.notEqual(v, null, `the sum is not ${p}, and the check must see it`);
  }
  assert.match(propertyViolation(honest, "non-conflicting")!, /<direction, g_\d> = .* < 0/);
  assert.match(propertyViolation(honest, "scale-invariant")!, /scaling every gradient by/);
  // registered without declaring non-conflicting it passes the declared-property loop; declaring it fails
  registerMethod(honest);
  try {
    const e = METHODS.get("sum-honest")!;
    for (const p of e.properties ?? []) assert.equal(propertyViolation(e, p), null);
  } finally {
    unregisterMethod("sum-honest");
  }
  const boastful = sumMethod("sum-boastful", ["non-conflicting"]);
  assert.notEqual(propertyViolation(boastful, "non-conflicting"), null);
});

test("registerMethod rejects unknown properties with a did-you-mean", () => {
  assert.throws(() => registerMethod(sumMethod("sum-typo", ["scale-equivarient" as MethodProperty])), /unknown property "scale-equivarient".*did you mean "scale-equivariant"\?/);
  assert.throws(() => registerMethod({ ...sumMethod("sum-bad", []), properties: "deterministic" } as never), /properties must be an array/);
  assert.equal(METHODS.has("sum-typo"), false);
});
