"""Province-level codes that open a Chinese resident identity number (DESIGN §4).

The first two digits of a resident ID (GB 11643-1999) are the province-level
part of the administrative division code (GB/T 2260) of the place where the
number was first issued. An ID keeps that code for life, whatever happens to
the place later, so only the province part is checked: county and city codes
come and go (Pudong's ``310115`` dates from 1992, Jiayuguan's ``620201`` is a
city without counties), and neither an unknown county code nor a code created
after the birth date is ever grounds for refusal.

The list is the national one: the province-level codes of GB/T 2260 (no
province-level unit has been abolished since its first edition in 1980;
Hainan ``46``, 1988, and Chongqing ``50``, 1997, were added, and IDs first
issued there before then carry ``44`` and ``51``, on the list too), plus ``83``:

* ``71`` Taiwan, ``81`` Hong Kong and ``82`` Macao are on GB/T 2260;
* ``81``, ``82`` and ``83`` open the identity numbers on residence permits for
  residents of Hong Kong, Macao and Taiwan (State Council, 2018: address codes
  ``810000``, ``820000`` and ``830000``), which platforms receive in the same
  field as resident IDs. ``83`` is not a GB/T 2260 province but is on every such
  permit of a Taiwan resident, so it is accepted.

Pure data: no I/O.
"""

from __future__ import annotations

__all__ = ["PROVINCE_CODES"]

PROVINCE_CODES: dict[str, str] = {
    "11": "Beijing 北京",
    "12": "Tianjin 天津",
    "13": "Hebei 河北",
    "14": "Shanxi 山西",
    "15": "Inner Mongolia 内蒙古",
    "21": "Liaoning 辽宁",
    "22": "Jilin 吉林",
    "23": "Heilongjiang 黑龙江",
    "31": "Shanghai 上海",
    "32": "Jiangsu 江苏",
    "33": "Zhejiang 浙江",
    "34": "Anhui 安徽",
    "35": "Fujian 福建",
    "36": "Jiangxi 江西",
    "37": "Shandong 山东",
    "41": "Henan 河南",
    "42": "Hubei 湖北",
    "43": "Hunan 湖南",
    "44": "Guangdong 广东",
    "45": "Guangxi 广西",
    "46": "Hainan 海南",
    "50": "Chongqing 重庆",
    "51": "Sichuan 四川",
    "52": "Guizhou 贵州",
    "53": "Yunnan 云南",
    "54": "Tibet 西藏",
    "61": "Shaanxi 陕西",
    "62": "Gansu 甘肃",
    "63": "Qinghai 青海",
    "64": "Ningxia 宁夏",
    "65": "Xinjiang 新疆",
    "71": "Taiwan 台湾",
    "81": "Hong Kong 香港 (also residence permits of Hong Kong residents)",
    "82": "Macao 澳门 (also residence permits of Macao residents)",
    "83": "residence permits of Taiwan residents 台湾居民居住证",
}
