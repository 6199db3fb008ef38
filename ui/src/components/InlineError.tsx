/**
 * The one way a screen shows a failure next to the control that caused it.
 *
 * `error` is what was caught or found: a backend failure (an `IpcFailure`, shown as its title and
 * the backend's message, with its `code` in `data-code`), an {@link InputError} (a value typed in
 * a form that cannot be used), or a string the UI's own checks worded (shown as it is). `null`
 * or `undefined` renders nothing. `inline` renders a `<span>` for errors inside a row of controls.
 */
import { describeFailure } from "../lib/ipc";

/** A value typed in a form that cannot be used; the message names the field and the value. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

interface InlineErrorProps {
  error: unknown;
  testId?: string;
  className?: string;
  inline?: boolean;
  /** An element id (for `aria-describedby` on the field it is about). */
  id?: string;
}

export function InlineError({ error, testId, className, inline, id }: InlineErrorProps) {
  if (error == null || error === "" || error === false) return null;
  const cls = className ? `inline-error ${className}` : "inline-error";
  if (typeof error === "string") {
    const Tag = inline ? "span" : "div";
    return (
      <Tag id={id} className={cls} role="alert" data-testid={testId} data-code="">
        {error}
      </Tag>
    );
  }
  const f = error instanceof InputError ? { title: "Check the input", detail: error.message, code: null } : describeFailure(error);
  const Tag = inline ? "span" : "div";
  return (
    <Tag id={id} className={cls} role="alert" data-testid={testId} data-code={f.code ?? ""}>
      <strong>{f.title}:</strong> {f.detail}
    </Tag>
  );
}
