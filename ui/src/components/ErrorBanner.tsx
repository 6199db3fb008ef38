import type { Failure } from "../lib/session";

export function ErrorBanner({ failure, onDismiss }: { failure: Failure; onDismiss: () => void }) {
  return (
    <div className="error-banner" role="alert" data-testid="error-banner" data-code={failure.code ?? ""}>
      <div>
        <strong>{failure.title}</strong>
        <span className="error-where">{failure.where}</span>
        <span className="error-detail" data-testid="error-message">
          {failure.detail}
        </span>
      </div>
      <button className="ghost" onClick={onDismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}
