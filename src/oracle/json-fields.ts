import { TraceFormatError } from '../errors.js';

/** Typed reads of a JSON object's fields; a wrong field is a TraceFormatError naming where, what was expected and what was found. */
export class JsonFields {
  private readonly value: Record<string, unknown>;

  constructor(
    value: unknown,
    private readonly where: string,
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new TraceFormatError(`${where}: expected an object, found ${describeJson(value)}`);
    this.value = value as Record<string, unknown>;
  }

  private fail(key: string, expected: string): never {
    throw new TraceFormatError(`${this.where}.${key}: expected ${expected}, found ${describeJson(this.value[key])}`);
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  number(key: string, min: number, max: number): number {
    const v = this.value[key];
    return typeof v === 'number' && v >= min && v <= max ? v : this.fail(key, `a number in [${min}, ${max}]`);
  }

  integer(key: string, min: number): number {
    const v = this.value[key];
    return Number.isSafeInteger(v) && (v as number) >= min ? (v as number) : this.fail(key, `an integer ≥ ${min}`);
  }

  boolean(key: string): boolean {
    const v = this.value[key];
    return typeof v === 'boolean' ? v : this.fail(key, 'true or false');
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T {
    const v = this.value[key];
    return choices.includes(v as T) ? (v as T) : this.fail(key, `one of ${choices.map((c) => `"${c}"`).join(', ')}`);
  }

  numbers(key: string): number[] {
    const v = this.value[key];
    return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? v : this.fail(key, 'a list of finite numbers');
  }

  integers(key: string, min: number): number[] {
    const v = this.value[key];
    return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= min) ? v : this.fail(key, `a list of integers ≥ ${min}`);
  }

  pair(key: string): [number, number] {
    const v = this.numbers(key);
    return v.length === 2 ? [v[0], v[1]] : this.fail(key, 'a list of 2 numbers');
  }

  object(key: string): JsonFields {
    return new JsonFields(this.value[key], `${this.where}.${key}`);
  }

  objects(key: string): JsonFields[] {
    const v = this.value[key];
    return Array.isArray(v) ? v.map((item, i) => new JsonFields(item, `${this.where}.${key}[${i}]`)) : this.fail(key, 'a list of objects');
  }
}

/** A JSON value in a message, cut at 60 characters. */
export function describeJson(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
