/** The Tensors screen: the tensor tree by block, and the selected tensor. */
import { TensorTree } from "../components/TensorTree";
import { TensorDetails } from "../components/TensorDetails";
import { useSession } from "../lib/session";
import { NoModel } from "./NoModel";

export function TensorsScreen() {
  const { summary, tensors, selected, setSelected } = useSession();
  if (!summary) return <NoModel screen="tensors" />;
  const tensor = tensors.find((t) => t.name === selected) ?? null;
  return (
    <div className="screen screen-split" data-testid="screen-tensors">
      <aside className="sidebar">
        <TensorTree tensors={tensors} selected={selected} onSelect={setSelected} />
      </aside>
      <div className="content">
        <TensorDetails tensor={tensor} summary={summary} />
      </div>
    </div>
  );
}
