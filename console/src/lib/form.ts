import { type ChangeEvent, useCallback, useMemo, useState } from "react";
import { fieldErrors, messageOf } from "./api";

type Problems<V> = Partial<Record<keyof V & string, string>>;

/** The fields of `V` that hold text. */
type TextField<V> = { [K in keyof V]: V[K] extends string ? K : never }[keyof V] & string;

/** For `text(name, upperCase)`: a currency code, typed in either case, kept in upper case. */
export const upperCase = (typed: string): string => typed.toUpperCase();

export type FormOptions<V> = {
  initial: V;
  validate: (values: V) => Problems<V>;
  /** Fields checked on every keystroke rather than when left (e.g. the allowed-IP list). */
  live?: (keyof V & string)[];
  /** A prefix for input ids, so the first invalid field can be focused. */
  idPrefix: string;
};

/**
 * Form state with checks before sending: a field shows its problem once it has been left
 * (or at once for `live` fields), every field shows it after a submit attempt, and nothing
 * is sent while any problem remains. Problems the server reports per field replace the
 * local ones until that field changes; its message is kept for the form as a whole.
 */
export function useForm<V extends Record<string, unknown>>(opts: FormOptions<V>) {
  const { initial, validate, live = [], idPrefix } = opts;
  const [values, setValues] = useState<V>(initial);
  const [touched, setTouched] = useState<Partial<Record<keyof V, boolean>>>({});
  const [submitted, setSubmitted] = useState(false);
  const [server, setServer] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const problems = useMemo(() => validate(values), [validate, values]);

  const set = useCallback(
    <K extends keyof V & string>(field: K, value: V[K]) => {
      setValues((v) => ({ ...v, [field]: value }));
      setServer((s) => {
        if (!(field in s)) return s;
        const { [field]: _gone, ...rest } = s;
        return rest;
      });
      if (live.includes(field)) setTouched((t) => ({ ...t, [field]: true }));
    },
    [live],
  );

  const error = (field: keyof V & string): string | undefined =>
    server[field] ?? (submitted || touched[field] ? problems[field] : undefined);

  /**
   * Props for a Mantine input bound to `field`. Leaving a field untouched does not flag it
   * (an error appearing on blur would move the button being clicked); leaving one that was
   * changed does.
   */
  const field = <K extends keyof V & string>(name: K) => ({
    id: `${idPrefix}-${name}`,
    error: error(name),
    onBlur: () => {
      if (values[name] !== initial[name]) setTouched((t) => ({ ...t, [name]: true }));
    },
  });

  /**
   * Props for a Mantine text input (TextInput, PasswordInput, Textarea) bound to a text field:
   * its value, what typing sets (through `transform`, if any), and `field`'s props.
   */
  const text = <K extends TextField<V>>(name: K, transform?: (typed: string) => string) => ({
    value: values[name] as string,
    onChange: (e: ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => {
      const typed = e.currentTarget.value;
      set(name, (transform ? transform(typed) : typed) as V[K]);
    },
    ...field(name),
  });

  const submit = async (send: (values: V) => Promise<void>): Promise<boolean> => {
    setSubmitted(true);
    setFormError(null);
    const bad = Object.keys(problems).filter((k) => problems[k as keyof V & string]);
    if (bad.length > 0) {
      const first = bad[0];
      if (typeof document !== "undefined" && first)
        document.getElementById(`${idPrefix}-${first}`)?.focus();
      return false;
    }
    setBusy(true);
    try {
      await send(values);
      return true;
    } catch (err) {
      setServer(fieldErrors(err));
      setFormError(messageOf(err));
      return false;
    } finally {
      setBusy(false);
    }
  };

  const reset = (next: V = initial) => {
    setValues(next);
    setTouched({});
    setSubmitted(false);
    setServer({});
    setFormError(null);
  };

  return {
    values,
    set,
    field,
    text,
    error,
    submit,
    reset,
    busy,
    formError,
    setFormError,
    problems,
  };
}
