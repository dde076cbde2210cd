// Validates KEDA objects against the validators @kubernetes-models/keda
// generates from KEDA's API types (keda.sh/v1alpha1). Reads a JSON array of
// objects on stdin; prints a JSON array of {kind, name, errors} (errors
// empty when valid). Used by ../test_schemas.py.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { ClusterTriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/ClusterTriggerAuthentication";
import { ScaledJob } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob";

const models = { ScaledObject, TriggerAuthentication, ClusterTriggerAuthentication, ScaledJob };
let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((obj) => {
  const name = obj?.metadata?.name ?? "";
  const Model = models[obj.kind];
  if (!Model || obj.apiVersion !== "keda.sh/v1alpha1") {
    return { kind: obj.kind, name, errors: [`no KEDA model for ${obj.apiVersion} ${obj.kind}`] };
  }
  try {
    new Model(obj).validate();
    return { kind: obj.kind, name, errors: [] };
  } catch (e) {
    return { kind: obj.kind, name, errors: [String(e.message ?? e)] };
  }
});
process.stdout.write(JSON.stringify(results));
