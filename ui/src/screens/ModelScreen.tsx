/** The Model screen: what the file is (overview, type histogram) and its metadata. */
import { ModelOverview } from "../components/ModelOverview";
import { MetadataTable } from "../components/MetadataTable";
import { useSession } from "../lib/session";
import { NoModel } from "./NoModel";

export function ModelScreen() {
  const { summary, metadata } = useSession();
  if (!summary) return <NoModel screen="model" />;
  return (
    <div className="screen screen-scroll" data-testid="screen-model">
      <ModelOverview summary={summary} />
      <MetadataTable rows={metadata} />
    </div>
  );
}
