import { describeFailure } from "../../lib/ipc";

/** A value typed in a form that cannot be used; the message names the field and the value. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/** A failure shown next to the control that caused it, with the backend's message. */
export function InlineError({ error, testId }: { error: unknown; testId?: string }) {
  if (error == null) return null;
  const f =
    error instanceof InputError ? { title: "Check the input", detail: error.message, code: null } : describeFailure(error);
  return (
    <div className="inline-error" role="alert" data-testid={testId} data-code={f.code ?? ""}>
      <strong>{f.title}:</strong> {f.detail}
    </div>
  );
}
