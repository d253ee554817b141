import { ScimError, invalidValue } from './scim-error.ts';
import { type Filter, matches, member, parseFilter } from './scim-filter.ts';
import { type AttributePath, PATCH_SCHEMA, resolvePath, SCHEMA_IDS, USER_SCHEMA } from './scim-schema.ts';
import { SCIM_PATCH_MAX_OPERATIONS } from '../config/defaults.ts';
import { excerpt } from '../shared/text.ts';

/**
 * PATCH (RFC 7644 3.5.2) on a resource's JSON: add, replace and remove, with or without a path,
 * paths such as `name.familyName`, `emails[type eq "work"].value` and schema-qualified extension
 * attributes. The result is a whole resource again, which the caller reads and checks exactly as a
 * PUT, so PATCH has no rules of its own about values.
 */

type Json = Record<string, unknown>;
type Op = 'add' | 'replace' | 'remove';

interface Target extends AttributePath {
  filter?: Filter;
}

/** `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, each possibly behind a schema URN. */
function parsePath(path: string): Target {
  const open = path.indexOf('[');
  if (open < 0) return resolvePath(path, 'invalidPath');
  const close = path.lastIndexOf(']');
  if (close < open) throw new ScimError(400, 'invalidPath', `"]" is missing in the path ${excerpt(path)}`);
  const after = path.slice(close + 1);
  if (after && !after.startsWith('.')) throw new ScimError(400, 'invalidPath', `the path ${excerpt(path)} cannot be read`);
  const target: Target = { ...resolvePath(`${path.slice(0, open)}${after}`, 'invalidPath'), filter: parseFilter(path.slice(open + 1, close)) };
  if (!target.attribute.multiValued) throw new ScimError(400, 'invalidPath', `${target.attribute.name} has a single value: a filter in brackets does not apply`);
  return target;
}

/** The object that holds the attribute: the resource, or its extension object (made when adding). */
function containerOf(doc: Json, schema: string, create: boolean): Json | undefined {
  if (schema === USER_SCHEMA) return doc;
  const key = Object.keys(doc).find((k) => k.toLowerCase() === schema.toLowerCase());
  if (key !== undefined) return doc[key] as Json;
  if (!create) return undefined;
  doc[schema] = {};
  return doc[schema] as Json;
}

/** Sets a member by name, replacing one spelt with other letter case. */
function put(target: Json, name: string, value: unknown): void {
  for (const key of Object.keys(target)) if (key.toLowerCase() === name.toLowerCase()) delete target[key];
  target[name] = value;
}

function drop(target: Json, name: string): void {
  for (const key of Object.keys(target)) if (key.toLowerCase() === name.toLowerCase()) delete target[key];
}

const asObject = (value: unknown, what: string): Json =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : invalidValue(`the value for ${what} must be an object`);

/** A new value of a multi-valued attribute made from a filter's `eq` terms: add `emails[type eq "work"].value`. */
function seed(filter: Filter): Json {
  if (filter.op === 'and') return { ...seed(filter.left), ...seed(filter.right) };
  if (filter.op === 'eq') return { [filter.path]: filter.value };
  throw new ScimError(400, 'noTarget', 'no value matches the filter of the path');
}

function apply(doc: Json, op: Op, target: Target, value: unknown): void {
  const { attribute, sub, filter } = target;
  if (attribute.mutability === 'readOnly' || sub?.mutability === 'readOnly') throw new ScimError(400, 'mutability', `${target.key} is read-only`);
  const container = containerOf(doc, target.schema, op !== 'remove');
  if (!container) return;
  const current = member(container, attribute.name);

  if (attribute.multiValued) {
    const list = Array.isArray(current) ? [...current] : [];
    if (filter) {
      const hits = list.filter((item) => matches(filter, item));
      if (hits.length === 0) {
        if (op !== 'add') throw new ScimError(400, 'noTarget', `no value of ${attribute.name} matches the filter of the path`);
        hits.push(seed(filter));
        list.push(hits[0]);
      }
      const kept = list.flatMap((item) => {
        if (!hits.includes(item)) return [item];
        if (op === 'remove' && !sub) return [];
        const copy = { ...(item as Json) };
        if (sub) op === 'remove' ? drop(copy, sub.name) : put(copy, sub.name, value);
        else Object.assign(copy, asObject(value, target.key));
        return [copy];
      });
      put(container, attribute.name, kept);
      return;
    }
    if (sub) {
      // emails.value: every value of the attribute.
      put(
        container,
        attribute.name,
        list.map((item) => {
          const copy = { ...(item as Json) };
          if (op === 'remove') drop(copy, sub.name);
          else put(copy, sub.name, value);
          return copy;
        }),
      );
      return;
    }
    if (op === 'remove') {
      drop(container, attribute.name);
      return;
    }
    const given = Array.isArray(value) ? value : [value];
    put(container, attribute.name, op === 'add' ? [...list, ...given] : given);
    return;
  }

  if (sub) {
    const parent = current !== undefined && current !== null ? { ...asObject(current, attribute.name) } : {};
    if (op === 'remove') drop(parent, sub.name);
    else put(parent, sub.name, value);
    put(container, attribute.name, parent);
    return;
  }
  if (op === 'remove') {
    drop(container, attribute.name);
    return;
  }
  // A complex attribute takes the sub-attributes given and keeps the others (RFC 7644 3.5.2.1 and .3).
  if (attribute.type === 'complex' && current !== null && typeof current === 'object') put(container, attribute.name, { ...(current as Json), ...asObject(value, attribute.name) });
  else put(container, attribute.name, value);
}

/** Each member of a path-less value is an operation on that attribute; an extension's members on its own. */
function applyWithoutPath(doc: Json, op: Op, value: unknown): void {
  if (op === 'remove') throw new ScimError(400, 'noTarget', 'remove needs a path');
  for (const [key, item] of Object.entries(asObject(value, 'an operation without a path'))) {
    const schema = SCHEMA_IDS.find((id) => id !== USER_SCHEMA && id.toLowerCase() === key.toLowerCase());
    if (schema) {
      for (const [name, inner] of Object.entries(asObject(item, schema))) apply(doc, op, parsePath(`${schema}:${name}`), inner);
    } else if (key.toLowerCase() !== 'schemas') {
      apply(doc, op, parsePath(key), item);
    }
  }
}

/** The resource after the operations of a PatchOp body, applied in order to a copy. */
export function applyPatch(resource: Json, body: unknown): Json {
  const request = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Json) : {};
  const schemas = member(request, 'schemas');
  if (!Array.isArray(schemas) || !schemas.includes(PATCH_SCHEMA)) throw new ScimError(400, 'invalidSyntax', `a PATCH body has schemas [${PATCH_SCHEMA}] and Operations`);
  const operations = member(request, 'Operations');
  if (!Array.isArray(operations) || operations.length === 0) throw new ScimError(400, 'invalidSyntax', 'Operations must be a list of at least one operation');
  if (operations.length > SCIM_PATCH_MAX_OPERATIONS) invalidValue(`at most ${SCIM_PATCH_MAX_OPERATIONS} operations in one PATCH`);
  const doc = structuredClone(resource);
  for (const operation of operations) {
    const entry = asObject(operation, 'an operation');
    const op = member(entry, 'op');
    const kind = typeof op === 'string' ? (op.toLowerCase() as Op) : undefined;
    if (kind !== 'add' && kind !== 'replace' && kind !== 'remove') invalidValue('op must be add, replace or remove');
    const path = member(entry, 'path');
    const value = member(entry, 'value');
    if (path !== undefined && typeof path !== 'string') throw new ScimError(400, 'invalidPath', 'path must be a string');
    if (kind !== 'remove' && value === undefined) invalidValue(`${kind} needs a value`);
    if (path === undefined || path === '') applyWithoutPath(doc, kind!, value);
    else apply(doc, kind!, parsePath(path), value);
  }
  return doc;
}
