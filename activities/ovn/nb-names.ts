/**
 * Names and external_ids of the Northbound rows Quantix writes. Every row carries `qx-owner` and
 * the id of the Quantix object it stands for, so a sweep can compare the database with ours.
 * Logical switch port names are the port ids themselves: libvirt's openvswitch virtualport needs
 * the interface id to be a UUID (shared recipe ovn.md, section 4), as OpenStack names them.
 */
export const NB_DB = "OVN_Northbound";

export const OWNER_KEY = "qx-owner";
export const OWNER = "quantix";

export const switchName = (networkId: string) => `qx-net-${networkId}`;
export const localnetPortName = (networkId: string) => `qx-localnet-${networkId}`;
/** Port group names may hold letters, digits and '_' only: they appear in ACL matches (@name, $name_ip4). */
export const portGroupName = (securityGroupId: string) => `qx_sg_${securityGroupId.replace(/-/g, "_")}`;
export const routerName = (routerId: string) => `qx-router-${routerId}`;
export const routerPortName = (portId: string) => `qx-lrp-${portId}`;

export function ownedIds(ids: Record<string, string>): Record<string, string> {
  return { [OWNER_KEY]: OWNER, ...ids };
}
